import assert from "node:assert/strict";
import { openTestHub, publishSeqs, redisMissing, startRedis, TestClient } from "./_harness.ts";
import { deploy, isSubscribed, resumeProperty } from "./_resume.ts";

const missing = redisMissing();
const ignore = missing !== null;
if (ignore) console.warn(`Redis history tests ignored: ${missing}`);

Deno.test({
  name: "redis history: a client resumes on another node, which also rebuilt its state",
  ignore,
  fn: async () => {
    await using redis = await startRedis();
    const env = { HERALD_HISTORY: "redis", HERALD_REDIS_URL: redis.url };
    await using nodeA = await openTestHub(env);
    const client = await TestClient.connect(`${nodeA.wsUrl}?topic=deploy.*`);
    await publishSeqs(nodeA, [deploy(1), deploy(2)]);
    const seen = await client.waitForEvents(2);
    await client.close();
    const missed = await publishSeqs(nodeA, [deploy(3), deploy(4), deploy(5)]);

    await using nodeB = await openTestHub(env);
    await using resumed = await TestClient.connect(
      `${nodeB.wsUrl}?topic=deploy.*&since=${seen[1]!.seq}`,
    );
    await resumed.waitForEvents(3);
    const live = await publishSeqs(nodeB, [deploy(6)]);
    await resumed.waitForEvents(4);
    const reply = resumed.frames.find(isSubscribed)!;
    assert.deepEqual([reply.payload.recovered, reply.payload.replayed], [true, 3]);
    assert.equal(resumed.frames.indexOf(reply), 0);
    assert.deepEqual(resumed.events.map((event) => event.seq), [...missed, ...live]);
    assert.equal(live[0]!.split("-")[1], "6", "both nodes share one cursor sequence");
    const { app } = await (await fetch(`${nodeB.url}/apps/web`)).json();
    assert.equal(app.deployment.steps.length, 6, "node B rebuilt state from Redis on start");
  },
});

Deno.test({
  name: "redis history: recovered:false for an unknown epoch; a down server answers 503",
  ignore,
  fn: async () => {
    const redis = await startRedis();
    await using hub = await openTestHub({
      HERALD_HISTORY: "redis",
      HERALD_REDIS_URL: redis.url,
      HERALD_HISTORY_TIMEOUT_MS: "300",
    });
    await publishSeqs(hub, [deploy(1)]);
    await using client = await TestClient.connect(`${hub.wsUrl}?since=zz0other-1`);
    const reply = await client.waitForFrame(isSubscribed, "subscribed reply");
    assert.deepEqual([reply.payload.recovered, reply.payload.reason], [false, "epoch"]);
    await redis.stop();
    const response = await hub.publish(deploy(2));
    assert.equal(response.status, 503);
    assert.equal((await response.json()).error.code, "unavailable");
  },
});

for (const seed of [5, 13]) {
  Deno.test({
    name: `resume under concurrent publishing: no gap, no duplicate (redis, seed ${seed})`,
    ignore,
    fn: async () => {
      await using redis = await startRedis();
      await resumeProperty(seed, { HERALD_HISTORY: "redis", HERALD_REDIS_URL: redis.url });
    },
  });
}
