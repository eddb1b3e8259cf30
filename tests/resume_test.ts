import assert from "node:assert/strict";
import { publishSeqs, startTestHub, TestClient } from "./_harness.ts";
import { deploy, isSubscribed, resumeProperty } from "./_resume.ts";

Deno.test("resume replays the missed events after the subscribed reply, then goes live", async () => {
  await using hub = startTestHub();
  const first = await TestClient.connect(`${hub.wsUrl}?topic=deploy.*`);
  await publishSeqs(hub, [deploy(1), deploy(2)]);
  const seen = await first.waitForEvents(2);
  await first.close();
  const missed = await publishSeqs(hub, [deploy(3), deploy(4), deploy(5)]);
  await using second = await TestClient.connect(
    `${hub.wsUrl}?topic=deploy.*&since=${seen[1]!.seq}`,
  );
  await second.waitForEvents(3);
  const live = await publishSeqs(hub, [deploy(6)]);
  await second.waitForEvents(4);
  assert.deepEqual(second.frames[0], {
    type: "response",
    topic: "deploy.*",
    payload: { status: "subscribed", topic: "deploy.*", recovered: true, replayed: 3 },
  });
  assert.deepEqual(second.events.map((event) => event.seq), [...missed, ...live]);
});

Deno.test("a cursor the hub cannot place answers recovered:false, never an error", async () => {
  await using hub = startTestHub({ HERALD_HISTORY_SIZE: "3" });
  const seqs = await publishSeqs(hub, [1, 2, 3, 4, 5].map((n) => deploy(n)));
  const epoch = seqs[0]!.split("-")[0];
  const cases: [string, string][] = [
    ["garbage!", "malformed"],
    ["zz0other-2", "epoch"],
    [`${epoch}-99`, "future"],
    [`${epoch}-1`, "expired"],
  ];
  await using client = await TestClient.connect(hub.wsUrl);
  for (const [since, reason] of cases) {
    const reply = await client.request({
      type: "subscribe",
      topic: "deploy.*",
      since,
      requestId: reason,
    });
    assert.equal(reply.type, "response", `${since}: ${JSON.stringify(reply)}`);
    assert.equal(reply.payload.recovered, false);
    assert.equal(reply.payload.replayed, 0);
    assert.equal(reply.payload.reason, reason);
  }
  // The oldest retained cursor still places: events 3..5 are kept, so after 2 is exact.
  const ok = await client.request({
    type: "subscribe",
    topic: "deploy.*",
    since: `${epoch}-2`,
    requestId: "ok",
  });
  assert.equal(ok.payload.recovered, true);
  assert.equal(ok.payload.replayed, 3);
  const metrics = await (await fetch(`${hub.url}/metrics`)).text();
  assert.match(metrics, /herald_resumes_total\{outcome="epoch"\} 1/);
});

Deno.test("a cursor from the future does not make the hub skip live events", async () => {
  await using hub = startTestHub();
  const [seq] = await publishSeqs(hub, [deploy(1)]);
  const epoch = seq!.split("-")[0];
  await using client = await TestClient.connect(`${hub.wsUrl}?topic=deploy.*&since=${epoch}-999`);
  const reply = await client.waitForFrame((frame) => frame.type === "response", "the reply");
  assert.equal(reply.payload.reason, "future");
  const live = await publishSeqs(hub, [deploy(2)]);
  const [event] = await client.waitForEvents(1);
  assert.equal(event!.seq, live[0], "the live event arrives although it is before the cursor");
});

Deno.test("replay respects the subscription's topic and filters", async () => {
  await using hub = startTestHub();
  const seqs = await publishSeqs(hub, [
    { type: "app.status", appId: "web", payload: { status: "RUNNING" } },
    deploy(1, "web"),
    deploy(2, "api"),
    { type: "deploy.failed", appId: "web", payload: { error: "boom" } },
  ]);
  const epoch = seqs[0]!.split("-")[0];
  await using client = await TestClient.connect(hub.wsUrl);
  const reply = await client.request({
    type: "subscribe",
    topic: "deploy.*",
    filter: { appId: "web" },
    since: `${epoch}-0`,
    requestId: 1,
  });
  assert.equal(reply.payload.replayed, 2);
  const events = await client.waitForEvents(2);
  assert.deepEqual(events.map((event) => event.seq), [seqs[1], seqs[3]]);
});

Deno.test("a resuming subscribe drops the implicit * and does not repeat what it delivered", async () => {
  await using hub = startTestHub();
  const before = await publishSeqs(hub, [deploy(1), deploy(2)]);
  await using client = await TestClient.connect(hub.wsUrl);
  const during = await publishSeqs(hub, [deploy(3)]);
  await client.waitForEvents(1);
  const reply = await client.request({
    type: "subscribe",
    topic: "deploy.*",
    since: before[0],
    requestId: "r",
  });
  // Event 2 was missed before connecting; event 3 already came through the implicit `*`.
  assert.equal(reply.payload.replayed, 1);
  await publishSeqs(hub, [{ type: "log.line", payload: { line: "not subscribed" } }]);
  const after = await publishSeqs(hub, [deploy(4)]);
  await client.waitForEvents(3);
  assert.deepEqual(client.events.map((event) => event.seq), [...during, before[1], ...after]);
});

Deno.test("a replay longer than the client's queue is paced, not overflowed", async () => {
  await using hub = startTestHub({ HERALD_CLIENT_BUFFER: "4" });
  const seqs = await publishSeqs(hub, Array.from({ length: 60 }, (_, n) => deploy(n)));
  const epoch = seqs[0]!.split("-")[0];
  await using client = await TestClient.connect(`${hub.wsUrl}?since=${epoch}-0`);
  await client.waitForEvents(60);
  assert.equal(client.closeEvent, null);
  assert.deepEqual(client.events.map((event) => event.seq), seqs);
  assert.equal(client.frames[0]?.payload?.replayed, 60);
});

Deno.test("more missed events than HERALD_REPLAY_LIMIT answers recovered:false", async () => {
  await using hub = startTestHub({ HERALD_REPLAY_LIMIT: "5" });
  const seqs = await publishSeqs(hub, Array.from({ length: 8 }, (_, n) => deploy(n)));
  await using client = await TestClient.connect(`${hub.wsUrl}?since=${seqs[0]}`);
  const reply = await client.waitForFrame(isSubscribed, "subscribed reply");
  assert.equal(reply.payload.recovered, false);
  assert.equal(reply.payload.reason, "too_many");
  const live = await publishSeqs(hub, [deploy(9)]);
  await client.waitForEvents(1);
  assert.deepEqual(client.events.map((event) => event.seq), live);
});

const BACKENDS: [string, number[]][] = [["memory", [1, 7, 42]], ["kv", [3, 11]]];

for (const [backend, seeds] of BACKENDS) {
  for (const seed of seeds) {
    Deno.test(
      `resume under concurrent publishing: no gap, no duplicate (${backend}, seed ${seed})`,
      async () => {
        const dir = await Deno.makeTempDir({ prefix: "herald-resume-" });
        try {
          await resumeProperty(seed, {
            HERALD_HISTORY: backend,
            HERALD_KV_PATH: `${dir}/history.sqlite`,
          });
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      },
    );
  }
}
