import assert from "node:assert/strict";
import type { HeraldEvent } from "../../events/envelope.ts";
import { OriginTracker, TickBatcher } from "./_common.ts";

function event(id: string): HeraldEvent {
  return { tenant: "t", type: "x.y", payload: {}, id, seq: `e-${id}`, timestamp: "" };
}

Deno.test("TickBatcher: the publishes of one tick become one flush; each caller gets its earlier ids", async () => {
  const flushes: string[][] = [];
  const batcher = new TickBatcher((events, keyed) => {
    flushes.push(events.map((e) => e.id));
    assert.deepEqual(keyed, [true, false, true]);
    return Promise.resolve(new Map([[2, { id: "c", seq: "first" }]]));
  }, 100);
  const [one, two] = await Promise.all([
    batcher.add([event("a"), event("b")], new Set(["a"])),
    batcher.add([event("c")], new Set(["c"])),
  ]);
  assert.deepEqual(flushes, [["a", "b", "c"]]);
  assert.equal(one.size, 0);
  assert.deepEqual(two.get("c"), { id: "c", seq: "first" });
});

Deno.test("TickBatcher: a flush starts early at maxEvents, and a failed flush fails every caller in it", async () => {
  let flushes = 0;
  const batcher = new TickBatcher(() => {
    flushes++;
    return Promise.reject(new Error("Bus down"));
  }, 2);
  const calls = [batcher.add([event("a")], new Set()), batcher.add([event("b")], new Set())];
  assert.equal(flushes, 1, "flushed without waiting for the tick");
  for (const call of calls) await assert.rejects(call, /Bus down/);
});

Deno.test("OriginTracker: counts exactly the events missed, baselines new origins, notices resets", () => {
  const tracker = new OriginTracker();
  assert.deepEqual(tracker.accept("a", 10, 5), { state: "next" });
  assert.deepEqual(tracker.accept("a", 15, 1), { state: "next" });
  assert.deepEqual(tracker.accept("a", 20, 1), { state: "gap", missed: 4 });
  assert.deepEqual(tracker.accept("a", 0, 1), { state: "reset" });
  assert.deepEqual(tracker.accept("b", 3, 1, true), { state: "gap", missed: 3 });
});
