import assert from "node:assert/strict";
import { ManualClock } from "./clock.ts";
import { CursorOrder, type Fill } from "./cursor_order.ts";
import type { StoredEvent } from "./history/history.ts";

function entry(n: number, epoch = "ep"): StoredEvent {
  const event = {
    tenant: "t",
    type: "deploy.queued",
    payload: {},
    id: `id${n}`,
    seq: `${epoch}-${n}`,
    timestamp: "2026-01-01T00:00:00.000Z",
  };
  return { event, frame: JSON.stringify(event) };
}

function harness(store: (after: number, count: number) => Fill) {
  const clock = new ManualClock();
  const routed: string[] = [];
  const gaps: number[] = [];
  const order = new CursorOrder({
    waitMs: 100,
    maxPending: 50,
    clock,
    fill: (_tenant, after, count) => Promise.resolve(store(Number(after.split("-")[1]), count)),
    route: (stored, filled) => routed.push(`${stored.event.seq.split("-")[1]}${filled ? "f" : ""}`),
    gap: (_tenant, missed) => gaps.push(missed),
  });
  return { clock, routed, gaps, order };
}

const nothing = (): Fill => ({ state: "ok", events: [] });

Deno.test("events arriving out of cursor order are routed in order", () => {
  const { order, routed } = harness(nothing);
  for (const n of [1, 3, 2, 5, 4, 6]) order.accept(entry(n));
  assert.deepEqual(routed, ["1", "2", "3", "4", "5", "6"]);
  assert.equal(order.pending, 0);
});

Deno.test("a hole that stays open is filled from the history, and its late bus copy is dropped", async () => {
  const { order, routed, clock } = harness((after, count) => ({
    state: "ok",
    events: Array.from({ length: count }, (_, index) => entry(after + 1 + index)),
  }));
  order.accept(entry(1));
  order.accept(entry(4));
  order.accept(entry(5));
  assert.deepEqual(routed, ["1"]);
  await clock.advance(100);
  assert.deepEqual(routed, ["1", "2f", "3f", "4", "5"]);
  order.accept(entry(2));
  order.accept(entry(6));
  assert.deepEqual(
    routed,
    ["1", "2f", "3f", "4", "5", "6"],
    "the late copy of 2 is not routed twice",
  );
});

Deno.test("what the history no longer holds is reported as a gap, never skipped silently", async () => {
  const { order, routed, gaps, clock } = harness(() => ({ state: "lost" }));
  order.accept(entry(1));
  order.accept(entry(4));
  await clock.advance(100);
  assert.deepEqual(routed, ["1", "4"]);
  assert.deepEqual(gaps, [2]);
});

Deno.test("an unreachable history is asked again later", async () => {
  let reachable = false;
  const { order, routed, clock } = harness((after) =>
    reachable ? { state: "ok", events: [entry(after + 1)] } : { state: "unavailable" }
  );
  order.accept(entry(1));
  order.accept(entry(3));
  await clock.advance(100);
  assert.deepEqual(routed, ["1"]);
  reachable = true;
  await clock.advance(100);
  assert.deepEqual(routed, ["1", "2f", "3"]);
});

Deno.test("a tenant starts at cursor 1, or after what the history held when the node started", () => {
  const { order, routed } = harness(nothing);
  order.accept(entry(2));
  order.accept(entry(1));
  assert.deepEqual(routed, ["1", "2"], "a new tenant's first cursor is 1, even if 2 comes first");
  order.startAfter("t", "known", 9);
  order.accept(entry(9, "known"));
  order.accept(entry(11, "known"));
  order.accept(entry(10, "known"));
  assert.deepEqual(routed, ["1", "2", "10", "11"], "9 predates the node and is not routed");
  order.accept(entry(1, "wiped"));
  assert.deepEqual(routed, ["1", "2", "10", "11", "1"], "a new epoch counts from 1 again");
});

Deno.test("a discarded cursor (its publish was answered 503) is skipped without a gap", async () => {
  const { order, routed, gaps, clock } = harness((after) => // The history returns what it holds after the hole; 5 was discarded there too.
  ({
    state: "ok",
    events: [entry(after + 2)].filter((stored) => !stored.event.seq.endsWith("-5")),
  }));
  order.accept(entry(1));
  order.discard("t", "ep-2");
  order.accept(entry(3));
  assert.deepEqual(routed, ["1", "3"], "this node skips its own discarded cursor at once");
  order.accept(entry(6));
  await clock.advance(100);
  assert.deepEqual(routed, ["1", "3", "6"], "4 and 5 were not in the history's exact answer");
  order.accept(entry(5));
  assert.deepEqual(routed, ["1", "3", "6"], "a late copy of a skipped cursor is not routed");
  assert.deepEqual(gaps, []);
});

Deno.test("a new epoch ends the old one: what waited is routed, its holes are reported", () => {
  const { order, routed, gaps } = harness(nothing);
  order.accept(entry(1, "old"));
  order.accept(entry(3, "old"));
  order.accept(entry(4, "old"));
  assert.deepEqual(routed, ["1"]);
  order.accept(entry(1, "new"));
  assert.deepEqual(routed, ["1", "3", "4", "1"]);
  assert.deepEqual(gaps, [1], "cursor old-2 can no longer be filled: reported, not skipped");
  assert.equal(order.pending, 0);
});
