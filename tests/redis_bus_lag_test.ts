/**
 * `herald_bus_lag_seconds` on a real Redis: the redis bus reports how old the newest stream
 * entry it read was (in Redis' clock, from the entry id), and 0 once a read finds nothing new.
 */
import assert from "node:assert/strict";
import { createClient } from "redis";
import type { BusReceiver } from "../hub/bus/bus.ts";
import { RedisBus } from "../hub/bus/redis.ts";
import { redisMissing, startRedis, waitFor } from "./_harness.ts";

const missing = redisMissing();
if (missing !== null) console.warn(`Redis bus lag test ignored: ${missing}`);

const NOBODY: BusReceiver = { events() {}, gap() {}, message() {} };

Deno.test({
  name: "redis bus: lag is the age of the newest entry read, then 0 once caught up",
  ignore: missing !== null,
  fn: async () => {
    await using redis = await startRedis();
    const bus = new RedisBus({
      node: "reader",
      url: redis.url,
      prefix: "lag",
      maxBatch: 100,
      publishTimeoutMs: 2000,
      reconnectMinMs: 50,
      reconnectMaxMs: 200,
      streamMaxLen: 1000,
      idempotencyTtlMs: 60_000,
    });
    const admin = createClient({ url: redis.url });
    await admin.connect();
    await bus.start(NOBODY);
    try {
      await waitFor(() => bus.ready, "the bus ready (reading an empty stream from 0-0)");
      assert.equal(bus.lagMs, 0);
      // An entry Redis stamped 10 s ago, as a reader that fell 10 s behind would find it.
      const [seconds] = await admin.sendCommand(["TIME"]) as [string, string];
      const tenSecondsAgo = Number(seconds) * 1000 - 10_000;
      await admin.sendCommand(["XADD", "lag:bus", `${tenSecondsAgo}-1`, "o", "elsewhere"]);
      const lag = await waitFor(() => (bus.lagMs >= 9_000 ? bus.lagMs : 0), "a lag of about 10 s");
      assert.ok(lag < 15_000, `lag ${lag} ms is the entry's age, not more`);
      // The next read blocks, finds nothing and says the reader is caught up.
      await waitFor(() => bus.lagMs === 0, "the lag back to 0", 10_000);
    } finally {
      await bus.close();
      await admin.close();
    }
  },
});
