/**
 * The Redis bus with real hub processes on one real `redis-server`: exactly-once, per-producer
 * order across nodes, idempotent retries across nodes, a node killed mid-stream, and Redis
 * stopped and restarted mid-stream.
 */

import assert from "node:assert/strict";
import {
  type HubProcess,
  redisMissing,
  type RedisServer,
  spawnHub,
  startRedis,
  TestClient,
  waitFor,
} from "./_harness.ts";
import {
  assertExactlyOnceInOrder,
  getFresh,
  producerEvent,
  publishFresh,
  waitReady,
} from "./_fanout.ts";

const missing = redisMissing();
if (missing !== null) console.warn(`Skipping the Redis bus tests: ${missing}`);
const ignore = missing !== null;

async function redisHubs(redis: RedisServer, count: number): Promise<HubProcess[]> {
  const hubs = await Promise.all(
    Array.from({ length: count }, () =>
      spawnHub({
        HERALD_BUS: "redis",
        HERALD_REDIS_URL: redis.url,
        HERALD_REDIS_RECONNECT_MIN_MS: "50",
        HERALD_REDIS_RECONNECT_MAX_MS: "200",
      })),
  );
  for (const hub of hubs) await waitReady(hub.url);
  return hubs;
}

async function stopAll(hubs: HubProcess[], clients: TestClient[]): Promise<void> {
  for (const client of clients) await client.close();
  for (const hub of hubs) await hub.stop();
}

/** Publishes until accepted (a 503 is retried with the same id); returns the 503s seen. */
async function publishUntilAccepted(url: string, event: unknown): Promise<Response[]> {
  const refused: Response[] = [];
  await waitFor(
    async () => {
      const response = await publishFresh(url, event);
      if (response.status === 503) refused.push(response);
      else assert.equal(response.status, 202);
      return response.status === 202;
    },
    `publish to ${url} accepted`,
    20_000,
  );
  return refused;
}

Deno.test({
  name: "three nodes on one Redis: every client gets every event once, in producer order",
  ignore,
  async fn() {
    await using redis = await startRedis();
    const hubs = await redisHubs(redis, 3);
    const clients = await Promise.all(
      hubs.flatMap((hub) => [TestClient.connect(hub.wsUrl), TestClient.connect(hub.wsUrl)]),
    );
    try {
      // One producer per node, plus one that hops to a different node for every event.
      const producers = ["node0", "node1", "node2", "hopper"];
      const perProducer = 25;
      await Promise.all(producers.map(async (producer, index) => {
        for (let n = 0; n < perProducer; n++) {
          const hub = hubs[producer === "hopper" ? n % hubs.length : index]!;
          assert.equal((await publishFresh(hub.url, producerEvent(producer, n))).status, 202);
        }
      }));
      for (const [index, client] of clients.entries()) {
        await client.waitForEvents(producers.length * perProducer, 10_000);
        assertExactlyOnceInOrder(client.events, producers, perProducer, `client ${index}`);
      }

      // A retry landing on another node is answered with the original id and seq.
      const original = await (await publishFresh(hubs[0]!.url, producerEvent("retry", 0))).json();
      for (const hub of [hubs[1]!, hubs[2]!, hubs[0]!]) {
        const retry = await publishFresh(hub.url, producerEvent("retry", 0));
        assert.equal(retry.status, 202);
        assert.deepEqual((await retry.json()).accepted, original.accepted);
      }
      // The same new id published to all nodes at once: one wins, all answer with its seq.
      const raced = await Promise.all(
        hubs.map((hub) => publishFresh(hub.url, producerEvent("race", 0)).then((r) => r.json())),
      );
      assert.equal(new Set(raced.map((body) => body.accepted[0].seq)).size, 1);
      await publishFresh(hubs[2]!.url, { type: "fanout.done", id: "marker" });
      for (const client of clients) {
        await client.waitForFrame((frame) => frame.id === "marker", "the marker", 5000);
        assert.equal(client.events.filter((event) => event.id === "retry-0").length, 1);
        assert.equal(client.events.filter((event) => event.id === "race-0").length, 1);
      }
    } finally {
      await stopAll(hubs, clients);
    }
  },
});

Deno.test({
  name: "a node killed with SIGKILL mid-stream: the others keep delivering",
  ignore,
  async fn() {
    await using redis = await startRedis();
    const hubs = await redisHubs(redis, 3);
    const [first, second, doomed] = hubs as [HubProcess, HubProcess, HubProcess];
    const clients = await Promise.all(
      [first, second, doomed].map((hub) => TestClient.connect(hub.wsUrl)),
    );
    try {
      const perProducer = 40;
      await Promise.all(["a", "b"].map(async (producer, index) => {
        for (let n = 0; n < perProducer; n++) {
          if (producer === "a" && n === perProducer / 2) doomed.child.kill("SIGKILL");
          const hub = index === 0 ? first : second;
          assert.equal((await publishFresh(hub.url, producerEvent(producer, n))).status, 202);
        }
      }));
      assert.equal((await doomed.child.status).signal, "SIGKILL");
      for (const client of clients.slice(0, 2)) {
        await client.waitForEvents(2 * perProducer, 10_000);
        assertExactlyOnceInOrder(client.events, ["a", "b"], perProducer, "surviving client");
      }
    } finally {
      await stopAll(hubs, clients);
    }
  },
});

Deno.test({
  name:
    "Redis stopped and restarted mid-stream: 503 with Retry-After, then recovery, nothing twice",
  ignore,
  async fn() {
    await using redis = await startRedis();
    const hubs = await redisHubs(redis, 2);
    const clients = await Promise.all(hubs.map((hub) => TestClient.connect(hub.wsUrl)));
    try {
      const total = 30;
      const refused: Response[] = [];
      for (let n = 0; n < total; n++) {
        if (n === 10) {
          await redis.stop();
          for (const hub of hubs) {
            await waitFor(
              async () => (await getFresh(`${hub.url}/ready`)).status === 503,
              "/ready to answer 503 while Redis is down",
            );
          }
          const down = await publishFresh(hubs[0]!.url, producerEvent("down", 0));
          assert.equal(down.status, 503);
          assert.match(down.headers.get("retry-after") ?? "", /^[1-9]\d*$/);
          await redis.start();
        }
        refused.push(...await publishUntilAccepted(hubs[n % 2]!.url, producerEvent("p", n)));
      }
      for (const hub of hubs) await waitReady(hub.url);
      for (const response of refused) assert.ok(response.headers.has("retry-after"));
      for (const [index, client] of clients.entries()) {
        await client.waitForEvents(total, 10_000);
        assertExactlyOnceInOrder(client.events, ["p"], total, `client ${index}`);
        assert.equal(client.closeEvent, null, "the WebSocket stayed open through the outage");
        assert.ok(!client.events.some((event) => event.id === "down-0"), "a 503 was delivered");
      }
    } finally {
      await stopAll(hubs, clients);
    }
  },
});
