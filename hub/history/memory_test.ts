import assert from "node:assert/strict";
import { ManualClock } from "../clock.ts";
import { compareCursors, type EventDraft, parseCursor, UnencodableEventError } from "./history.ts";
import { MemoryHistory } from "./memory.ts";

function draft(n: number): EventDraft {
  return {
    tenant: "t",
    type: "deploy.step",
    payload: { step: `s${n}`, status: "running" },
    id: `i${n}`,
    timestamp: "2024-01-01T00:00:00Z",
  };
}

Deno.test("cursors of one epoch compare by number; other epochs do not compare", () => {
  assert.ok(compareCursors("e1-9", "e1-10")! < 0);
  assert.equal(compareCursors("e1-10", "e1-10"), 0);
  assert.equal(compareCursors("e1-9", "e2-10"), null);
  assert.equal(compareCursors("e1-9", "nonsense"), null);
  assert.equal(parseCursor("e1-01"), null, "no leading zeros: one cursor, one spelling");
});

Deno.test("memory history: count and age retention, and where cursors place", async () => {
  const clock = new ManualClock(0);
  const history = new MemoryHistory({ maxEvents: 3, ttlMs: 1000, maxBytes: 1 << 20 }, clock, "ep");
  const seqs = (await history.append("t", [1, 2, 3, 4].map(draft))).map((e) => e.event.seq);
  assert.deepEqual(seqs, ["ep-1", "ep-2", "ep-3", "ep-4"]);
  assert.deepEqual(await history.read("t", { since: "ep-0", limit: 9 }), {
    state: "lost",
    reason: "expired",
  });
  const page = await history.read("t", { since: "ep-1", limit: 2 });
  assert.equal(page.state, "ok");
  assert.deepEqual(page.state === "ok" && page.events.map((e) => e.event.seq), ["ep-2", "ep-3"]);
  assert.equal(page.state === "ok" && page.truncated, true);
  assert.deepEqual(await history.read("t", { since: "ep-5", limit: 9 }), {
    state: "lost",
    reason: "future",
  });
  const empty = await history.read("t", { since: "ep-4", limit: 9 });
  assert.deepEqual(empty, { state: "ok", events: [], truncated: false });
  await clock.advance(1001);
  assert.deepEqual(await history.read("t", { since: "ep-3", limit: 9 }), {
    state: "lost",
    reason: "expired",
  });
  assert.deepEqual(await history.read("t", { since: "ep-4", limit: 9 }), {
    state: "ok",
    events: [],
    truncated: false,
  });
  const other = await history.read("other", { since: "ep-0", limit: 9 });
  assert.deepEqual(other, { state: "ok", events: [], truncated: false });
});

Deno.test("the memory history is bounded in bytes as well as in count", async () => {
  const history = new MemoryHistory(
    { maxEvents: 1000, ttlMs: 60_000, maxBytes: 10_000 },
    new ManualClock(0),
    "ep",
  );
  const line = "z".repeat(3000);
  const stored = await history.append(
    "t",
    Array.from({ length: 5 }, (_, n) => ({
      tenant: "t",
      type: "log.line",
      payload: { line, n },
      id: `e${n}`,
      timestamp: "2026-01-01T00:00:00.000Z",
    })),
  );
  const page = await history.read("t", { since: null, limit: 100 });
  assert.equal(page.state, "ok");
  if (page.state !== "ok") return;
  assert.deepEqual(
    page.events.map((entry) => entry.event.payload.n),
    [2, 3, 4],
    "three 3 KB frames fit 10 KB",
  );
  const gone = await history.read("t", { since: stored[0]!.event.seq, limit: 100 });
  assert.deepEqual(
    gone,
    { state: "lost", reason: "expired" },
    "a cursor before the window cannot resume",
  );
});

Deno.test("memory history: an event that cannot be encoded rejects its batch and takes no cursor", async () => {
  const history = new MemoryHistory(
    { maxEvents: 100, ttlMs: 60_000, maxBytes: 1 << 20 },
    new ManualClock(0),
    "ep",
  );
  await history.append("t", [draft(1), draft(2), draft(3)]);
  // A BigInt cannot be serialized: it stands in for anything encodeEventFrame throws on.
  const bad = { ...draft(4), payload: { big: 1n as unknown as number } };
  await assert.rejects(
    () => history.append("t", [draft(4), bad]),
    (error: unknown) => error instanceof UnencodableEventError && error.index === 1,
  );
  const [next] = await history.append("t", [draft(5)]);
  assert.equal(next!.event.seq, "ep-4", "the refused batch handed out no cursor");
  const page = await history.read("t", { since: "ep-3", limit: 10 });
  assert.deepEqual(page.state === "ok" && page.events.map((e) => e.event.id), ["i5"]);
  const all = await history.read("t", { since: null, limit: 10 });
  assert.deepEqual(all.state === "ok" && all.events.map((e) => e.event.seq), [
    "ep-1",
    "ep-2",
    "ep-3",
    "ep-4",
  ]);
});
