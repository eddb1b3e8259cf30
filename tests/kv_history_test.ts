import assert from "node:assert/strict";
import { openTestHub, publishSeqs, publishTo, spawnHub, TestClient } from "./_harness.ts";

async function tempKv(): Promise<{ path: string; [Symbol.asyncDispose](): Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "herald-kv-" });
  return {
    path: `${dir}/history.sqlite`,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

/** The spawned hub's publish, shaped like a test hub's for `publishSeqs`. */
function via(url: string) {
  return { publish: (body: unknown) => publishTo(url, body) };
}

Deno.test("kv history survives a process restart: resume and state carry over", async () => {
  await using kv = await tempKv();
  const env = { HERALD_HISTORY: "kv", HERALD_KV_PATH: kv.path };
  let last: string;
  let missed: string[];
  {
    await using hub = await spawnHub(env);
    await using client = await TestClient.connect(`${hub.wsUrl}?topic=deploy.*`);
    const first = await publishSeqs(via(hub.url), [
      { type: "deploy.queued", appId: "web", payload: { imageTag: "v2" } },
      { type: "deploy.step", appId: "web", payload: { step: "build", status: "running" } },
    ]);
    await client.waitForEvents(2);
    last = first[1]!;
    missed = await publishSeqs(via(hub.url), [
      { type: "deploy.step", appId: "web", payload: { step: "build", status: "done" } },
      { type: "deploy.completed", appId: "web", payload: {} },
    ]);
    await client.close();
    const status = await hub.stop();
    assert.equal(status.code, 0);
  }
  await using hub = await spawnHub(env);
  await using client = await TestClient.connect(`${hub.wsUrl}?topic=deploy.*&since=${last}`);
  await client.waitForEvents(2);
  assert.equal(client.frames[0]?.payload?.recovered, true);
  assert.deepEqual(client.events.map((event) => event.seq), missed);
  const next = await publishSeqs(via(hub.url), {
    type: "deploy.queued",
    appId: "api",
    payload: {},
  });
  assert.equal(next[0]!.split("-")[0], last.split("-")[0], "the epoch survived the restart");
  await client.waitForEvents(3);
  const { app, seq } = await (await fetch(`${hub.url}/apps/web`)).json();
  assert.equal(app.deployment.status, "completed", "state was rebuilt from the history");
  assert.deepEqual(app.deployment.steps.map((step: { name: string }) => step.name), ["build"]);
  assert.equal(seq, next[0]);
});

Deno.test("kv history: too large an event is refused at publish with 400 bad_event", async () => {
  await using kv = await tempKv();
  await using hub = await openTestHub({
    HERALD_HISTORY: "kv",
    HERALD_KV_PATH: kv.path,
    HERALD_MAX_BODY_BYTES: String(1024 * 1024),
  });
  const big = { type: "log.line", payload: { line: "x".repeat(70_000) } };
  const response = await hub.publish([{ type: "log.line", payload: { line: "ok" } }, big]);
  assert.equal(response.status, 400);
  const body = await response.json();
  assert.equal(body.error.code, "bad_event");
  assert.equal(body.error.index, 1);
  assert.match(body.error.message, /KV history holds at most/);
  const history = await (await fetch(`${hub.url}/history`)).json();
  assert.deepEqual(history.events, [], "nothing of the batch was stored");
});
