/**
 * Resume across nodes: three hub processes sharing one Redis bus and one Redis history, a
 * producer on every node publishing at once. Every node must route events in cursor order (the
 * bus may bring them in another order), so a client that drops its connection at any moment and
 * resumes on another node ends with every event exactly once, in cursor order.
 */

import assert from "node:assert/strict";
import {
  type HubProcess,
  publishTo,
  redisMissing,
  spawnHub,
  startRedis,
  TestClient,
  waitFor,
} from "./_harness.ts";
import { waitReady } from "./_fanout.ts";
import { deploy, isSubscribed, random } from "./_resume.ts";

const missing = redisMissing();
if (missing !== null) console.warn(`Skipping the multi-node resume test: ${missing}`);

const cursorNumber = (seq: string) => Number(seq.slice(seq.lastIndexOf("-") + 1));

async function publishAll(hub: HubProcess, producer: number, count: number, rand: () => number) {
  const seqs: string[] = [];
  let n = 0;
  while (n < count) {
    const size = Math.min(count - n, 1 + Math.floor(rand() * 3));
    const batch = Array.from({ length: size }, () => ({
      ...deploy(n++, `app-${producer}`),
      payload: { step: "s", status: "running", producer, n },
    }));
    const response = await publishTo(hub.url, batch);
    assert.equal(response.status, 202);
    seqs.push(...(await response.json()).accepted.map((a: { seq: string }) => a.seq));
  }
  return seqs;
}

Deno.test({
  name: "three nodes, one Redis: cursor order everywhere, and resume on any node misses nothing",
  ignore: missing !== null,
  fn: async () => {
    const rand = random(7);
    await using redis = await startRedis();
    const env = {
      HERALD_BUS: "redis",
      HERALD_HISTORY: "redis",
      HERALD_REDIS_URL: redis.url,
    };
    const hubs = await Promise.all([0, 1, 2].map(() => spawnHub(env)));
    for (const hub of hubs) await waitReady(hub.url);
    const observers = await Promise.all(
      hubs.map((hub) => TestClient.connect(`${hub.wsUrl}?topic=deploy.*`)),
    );
    const perProducer = 80;
    const total = perProducer * hubs.length;
    let hopper = await TestClient.connect(`${hubs[0]!.wsUrl}?topic=deploy.*`);
    const hopped: string[] = [];
    const publishing = Promise.all(
      hubs.map((hub, index) => publishAll(hub, index, perProducer, rand)),
    );
    let reconnects = 0;
    /** Per connection: its node, the subscribe reply and the cursor numbers it got. */
    const trace: string[] = [];
    while (hopped.length + hopper.events.length < total) {
      const target = hopped.length + hopper.events.length + 1 + Math.floor(rand() * 30);
      await waitFor(
        () => hopped.length + hopper.events.length >= Math.min(target, total),
        "events before the next hop",
        15_000,
      );
      if (hopped.length + hopper.events.length >= total) break;
      await hopper.close();
      if (reconnects > 0) {
        assert.equal(hopper.frames.findIndex(isSubscribed), 0, "the reply comes first");
        assert.equal(hopper.frames[0]!.payload.recovered, true, JSON.stringify(hopper.frames[0]));
      }
      hopped.push(...hopper.events.map((event) => event.seq as string));
      trace.push(
        `node ${reconnects % hubs.length} ${JSON.stringify(hopper.frames[0]?.payload)}: ${
          hopper.events.map((event) => cursorNumber(event.seq)).join(",")
        }`,
      );
      reconnects++;
      const next = hubs[reconnects % hubs.length]!;
      hopper = await TestClient.connect(`${next.wsUrl}?topic=deploy.*&since=${hopped.at(-1)}`);
    }
    const accepted = (await publishing).flat();
    await hopper.close();
    hopped.push(...hopper.events.map((event) => event.seq as string));
    const inCursorOrder = [...accepted].sort((a, b) => cursorNumber(a) - cursorNumber(b));
    for (const [index, observer] of observers.entries()) {
      await observer.waitForEvents(total, 15_000);
      assert.deepEqual(
        observer.events.map((event) => event.seq),
        inCursorOrder,
        `node ${index} routes every event once, in cursor order`,
      );
      await observer.close();
    }
    assert.ok(reconnects >= 3, `only ${reconnects} hops`);
    assert.deepEqual(
      hopped,
      inCursorOrder,
      `the hopping client got every event once, in order; connections:\n${trace.join("\n")}`,
    );
    for (const hub of hubs) await hub.stop();
  },
});

Deno.test({
  name: "a memory history on a multi-node bus answers resume with recovered:false, not_shared",
  ignore: missing !== null,
  fn: async () => {
    await using redis = await startRedis();
    await using hub = await spawnHub({ HERALD_BUS: "redis", HERALD_REDIS_URL: redis.url });
    await waitReady(hub.url);
    const response = await publishTo(hub.url, deploy(1));
    const [{ seq }] = (await response.json()).accepted;
    await using client = await TestClient.connect(`${hub.wsUrl}?topic=deploy.*&since=${seq}`);
    const reply = await client.waitForFrame(isSubscribed, "the subscribe reply");
    assert.equal(reply.payload.recovered, false);
    assert.equal(reply.payload.reason, "not_shared");
  },
});
