import assert from "node:assert/strict";
import { ManualClock } from "./clock.ts";
import { IdempotencyWindow } from "./idempotency.ts";

Deno.test("ids are remembered per tenant for the TTL and up to the key limit", async () => {
  const clock = new ManualClock(0);
  const window = new IdempotencyWindow({ ttlMs: 1000, maxKeys: 2, clock });
  window.remember("t", { id: "a", seq: "1" });
  assert.deepEqual(window.get("t", "a"), { id: "a", seq: "1" });
  assert.equal(window.get("other", "a"), undefined);
  await clock.advance(1000);
  assert.equal(window.get("t", "a"), undefined, "expired");
  window.remember("t", { id: "b", seq: "2" });
  window.remember("t", { id: "c", seq: "3" });
  window.remember("t", { id: "d", seq: "4" });
  assert.equal(window.size, 2);
  assert.equal(window.get("t", "b"), undefined, "the oldest went first");
  assert.deepEqual(window.get("t", "d"), { id: "d", seq: "4" });
});
