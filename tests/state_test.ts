import assert from "node:assert/strict";
import { publishSeqs, startTestHub, TestClient } from "./_harness.ts";
import { SseReader } from "./_sse.ts";

const PROD = {
  name: "prod",
  environment: "production",
  phase: "Running",
  kubernetesVersion: "1.30",
  platform: "k3s",
  nodeCount: 3,
  applicationCount: 12,
  addons: ["ingress"],
};

const SEED = [
  {
    type: "persona.created",
    appId: "shop",
    payload: {
      namespace: "team-a",
      name: "checkout",
      type: "web",
      tier: "gold",
      phase: "Ready",
      health: "HEALTHY",
    },
  },
  {
    type: "persona.created",
    appId: "blog",
    payload: { namespace: "team-b", name: "writer", type: "worker", tier: "bronze" },
  },
  { type: "cluster.updated", payload: PROD },
  { type: "cluster.updated", payload: { name: "edge", environment: "staging" } },
  { type: "deploy.queued", appId: "shop", payload: { imageTag: "v7" } },
  { type: "deploy.failed", appId: "shop", payload: { error: "image pull" } },
];

Deno.test("persona, cluster, apps, state and history requests answer with their filters", async () => {
  await using hub = startTestHub();
  const seqs = await publishSeqs(hub, SEED);
  await using client = await TestClient.connect(hub.wsUrl);
  const request = (topic: string, payload: Record<string, unknown> = {}) =>
    client.request({ type: "request", topic, payload, requestId: `${topic}-${Math.random()}` });

  const all = await request("personas");
  assert.deepEqual(all.payload.personas.map((p: { name: string }) => p.name), [
    "checkout",
    "writer",
  ]);
  const teamA = await request("personas", { namespace: "team-a" });
  const { validation: _, ...persona } = teamA.payload.personas[0];
  assert.deepEqual(persona, {
    namespace: "team-a",
    name: "checkout",
    appName: "shop",
    type: "web",
    tier: "gold",
    phase: "Ready",
    health: "HEALTHY",
  });
  assert.equal(teamA.payload.personas.length, 1);

  const first = await request("cluster");
  assert.equal(first.payload.name, "edge", "first cluster by name when none is named");
  const prod = await request("cluster", { name: "prod" });
  assert.deepEqual(prod.payload, PROD);
  const missing = await request("cluster", { name: "nope" });
  assert.equal(missing.type, "error");
  assert.equal(missing.payload.code, "not_found");

  const apps = await request("apps");
  assert.deepEqual(apps.payload.apps.map((app: { appId: string }) => app.appId).sort(), [
    "blog",
    "shop",
  ]);
  const shop = await request("state", { appId: "shop" });
  assert.equal(shop.payload.seq, seqs.at(-1));
  assert.equal(shop.payload.app.deployment.status, "failed");
  assert.equal(shop.payload.app.deployment.error, "image pull");

  const history = await request("history", {
    since: seqs[0],
    topic: "deploy.*",
    filter: { appId: "shop" },
    limit: 1,
  });
  assert.equal(history.payload.recovered, true);
  assert.equal(history.payload.truncated, true);
  assert.deepEqual(history.payload.events.map((event: { seq: string }) => event.seq), [seqs[4]]);
  const lost = await request("history", { since: "nope" });
  assert.deepEqual([lost.payload.recovered, lost.payload.reason], [false, "malformed"]);
  const bad = await request("history", { topic: "no spaces" });
  assert.equal(bad.payload.code, "bad_message");
});

Deno.test("REST: GET /state, /apps, /apps/:appId and /history", async () => {
  await using hub = startTestHub();
  const seqs = await publishSeqs(hub, SEED);
  const get = async (path: string) => {
    const response = await fetch(`${hub.url}${path}`);
    return { status: response.status, body: await response.json() };
  };
  const state = await get("/state");
  assert.equal(state.status, 200);
  assert.equal(state.body.seq, seqs.at(-1));
  assert.equal(state.body.personas.length, 2);
  assert.equal(state.body.clusters.length, 2);
  assert.equal((await get("/state?appId=shop")).body.app.appId, "shop");
  assert.equal((await get("/apps")).body.apps.length, 2);
  assert.equal((await get("/apps/shop")).body.app.deployment.imageTag, "v7");
  const missing = await get("/apps/nope");
  assert.deepEqual([missing.status, missing.body.error.code], [404, "not_found"]);
  const history = await get(`/history?topic=cluster.*&since=${seqs[1]}`);
  assert.deepEqual(history.body.events.map((e: { seq: string }) => e.seq), [seqs[2], seqs[3]]);
  const byApp = await get("/history?appId=blog");
  assert.deepEqual(byApp.body.events.map((e: { seq: string }) => e.seq), [seqs[1]]);
  assert.equal((await get("/history?limit=zero")).status, 400);
  const post = await fetch(`${hub.url}/state`, { method: "POST" });
  assert.equal(post.status, 405);
  await post.body?.cancel();
});

Deno.test("snapshot then follow: the state's seq joins the live stream with no gap or repeat", async () => {
  await using hub = startTestHub();
  const total = 120;
  const restarts: string[] = [];
  const publishing = (async () => {
    for (let n = 0; n < total; n += 3) {
      const batch = Array.from({ length: 3 }, () => ({ type: "app.restarted", appId: "web" }));
      restarts.push(...await publishSeqs(hub, batch));
    }
  })();
  // Subscribed to something else, so every event frame below comes from the follow.
  await using client = await TestClient.connect(`${hub.wsUrl}?topic=log.line`);
  const snapshot = await client.request({
    type: "request",
    topic: "state",
    payload: { appId: "web" },
    requestId: "s",
  });
  const reply = await client.request({
    type: "subscribe",
    topic: "app.*",
    since: snapshot.payload.seq,
    requestId: "f",
  });
  assert.equal(reply.payload.recovered, true);
  await publishing;
  const already = snapshot.payload.app?.restarts ?? 0;
  await client.waitForEvents(total - already);
  assert.deepEqual(client.events.map((event) => event.seq), restarts.slice(already));
  assert.equal(already + client.events.length, total, "snapshot plus followed events is all");
});

Deno.test("identical consecutive resource statuses are not re-broadcast and are counted", async () => {
  await using hub = startTestHub();
  await using client = await TestClient.connect(`${hub.wsUrl}?topic=resource.status`);
  const status = (value: string) => ({
    type: "resource.status",
    appId: "web",
    payload: { resource: "pod-1", status: value },
  });
  await publishSeqs(hub, [status("PENDING"), status("PENDING"), status("PENDING")]);
  await publishSeqs(hub, [status("HEALTHY"), status("HEALTHY")]);
  await client.waitForEvents(2);
  const metrics = await (await fetch(`${hub.url}/metrics`)).text();
  assert.match(metrics, /herald_resource_status_unchanged_total 3/);
  assert.deepEqual(client.events.map((event) => event.payload.status), ["PENDING", "HEALTHY"]);
  const { resources } = await (await fetch(`${hub.url}/state?appId=web`)).json();
  assert.deepEqual(resources.map((r: { status: string }) => r.status), ["HEALTHY"]);
});

Deno.test("a repeated resource status is left out of replays too: live, resumed and SSE clients see one stream", async () => {
  await using hub = startTestHub();
  const status = (value: string) => ({
    type: "resource.status",
    appId: "web",
    payload: { resource: "pod-1", status: value },
  });
  const [first] = await publishSeqs(hub, [{ type: "app.status", appId: "web", payload: {} }]);
  await using live = await TestClient.connect(`${hub.wsUrl}?topic=resource.status`);
  const seqs = await publishSeqs(hub, [
    status("PENDING"),
    status("PENDING"),
    status("HEALTHY"),
    status("HEALTHY"),
  ]);
  await live.waitForEvents(2);
  await using resumed = await TestClient.connect(
    `${hub.wsUrl}?topic=resource.status&since=${first}`,
  );
  await resumed.waitForEvents(2);
  await using sse = await SseReader.open(
    `${hub.url}/events/stream?topic=resource.status&since=${first}`,
  );
  await sse.waitForEvents(2);
  const [marker] = await publishSeqs(hub, [status("FAILED")]);
  for (const client of [live, resumed]) await client.waitForEvents(3);
  await sse.waitForEvents(3);
  const expected = [seqs[0], seqs[2], marker];
  assert.deepEqual(live.events.map((event) => event.seq), expected);
  assert.deepEqual(resumed.events.map((event) => event.seq), expected);
  assert.deepEqual(sse.events.map((event) => event.id), expected);
  const replied = resumed.frames.find((frame) => frame.type === "response");
  assert.equal(replied?.payload.replayed, 2, "the replay counts what it carries");
});
