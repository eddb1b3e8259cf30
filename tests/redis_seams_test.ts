/**
 * The seams the agents feature builds on, on a real Redis: directed bus messages between two
 * redis buses, and presence shared by two nodes, including what happens to a dead node's entries.
 */
import assert from "node:assert/strict";
import { createClient } from "redis";
import type { BusReceiver, DirectedMessage } from "../hub/bus/bus.ts";
import { RedisBus } from "../hub/bus/redis.ts";
import { ManualClock } from "../hub/clock.ts";
import type { PresenceEntry } from "../hub/presence/presence.ts";
import { RedisPresence } from "../hub/presence/redis.ts";
import { redisMissing, startRedis, waitFor } from "./_harness.ts";

const missing = redisMissing();
const ignore = missing !== null;
if (ignore) console.warn(`Redis seam tests ignored: ${missing}`);

function bus(url: string, node: string): RedisBus {
  return new RedisBus({
    node,
    url,
    prefix: "seams",
    maxBatch: 100,
    publishTimeoutMs: 2000,
    reconnectMinMs: 50,
    reconnectMaxMs: 200,
    streamMaxLen: 1000,
    idempotencyTtlMs: 60_000,
  });
}

class Inbox implements BusReceiver {
  readonly got: [string, DirectedMessage][] = [];
  events(): void {}
  gap(): void {}
  message(from: string, message: DirectedMessage): void {
    this.got.push([from, message]);
  }
}

Deno.test({
  name: "redis bus: a directed message reaches only the node it names, in order",
  ignore,
  fn: async () => {
    await using redis = await startRedis();
    const a = bus(redis.url, "a");
    const b = bus(redis.url, "b");
    const [inboxA, inboxB] = [new Inbox(), new Inbox()];
    await a.start(inboxA);
    await b.start(inboxB);
    try {
      await waitFor(() => a.ready && b.ready, "both buses ready");
      // Subscribing happens in the background: send until b's inbox hears a probe.
      await waitFor(async () => {
        await a.send("b", { probe: true });
        return inboxB.got.length > 0;
      }, "b's inbox to be subscribed");
      inboxB.got.length = 0;
      for (const n of [1, 2, 3]) await a.send("b", { n });
      await b.send("nobody", { n: 9 });
      await b.send("a", { n: 4 });
      await waitFor(() => inboxB.got.length === 3 && inboxA.got.length === 1, "the messages");
      assert.deepEqual(inboxB.got, [["a", { n: 1 }], ["a", { n: 2 }], ["a", { n: 3 }]]);
      assert.deepEqual(inboxA.got, [["b", { n: 4 }]]);
    } finally {
      await a.close();
      await b.close();
    }
  },
});

const entry = (node: string, connection: string, since: number): PresenceEntry => ({
  tenant: "t",
  connection,
  node,
  subject: `agent-${connection}`,
  transport: "websocket",
  since,
});

Deno.test({
  name: "redis presence: shared by nodes; a closed node removes its entries, a dead one drops out",
  ignore,
  fn: async () => {
    await using redis = await startRedis();
    const clock = new ManualClock();
    const options = { url: redis.url, prefix: "seams", ttlMs: 60_000, clock };
    const a = new RedisPresence({ ...options, node: "a" });
    const b = new RedisPresence({ ...options, node: "b" });
    const c = new RedisPresence({ ...options, node: "c" });
    const admin = createClient({ url: redis.url });
    await admin.connect();
    try {
      for (const presence of [a, b, c]) await presence.start();
      await a.join(entry("a", "a1", 1));
      await b.join(entry("b", "b1", 2));
      await c.join(entry("c", "c1", 3));
      await b.join({ ...entry("b", "b2", 4), tenant: "other" });
      assert.deepEqual((await a.list("t")).map((e) => e.connection), ["a1", "b1", "c1"]);
      assert.deepEqual(await a.find("t", "b1"), entry("b", "b1", 2));
      assert.equal(await a.find("t", "b2"), null, "another tenant's connection");

      await b.close();
      assert.deepEqual((await a.list("t")).map((e) => e.connection), ["a1", "c1"]);
      assert.deepEqual(await a.list("other"), []);

      // Node c dies without closing: its liveness key expires as Redis would expire it.
      await admin.del("seams:presence:alive:c");
      assert.equal(await a.find("t", "c1"), null);
      assert.deepEqual((await a.list("t")).map((e) => e.connection), ["a1"]);
      assert.equal(await admin.hExists("seams:presence:1:t", "c1"), 0, "removed from the store");

      await a.leave("t", "a1");
      assert.deepEqual(await a.list("t"), []);
    } finally {
      await a.close();
      await c.close();
      admin.destroy();
    }
  },
});
