import assert from "node:assert/strict";
import { parseTopic } from "../events/topic.ts";
import { ManualClock } from "./clock.ts";
import type { EventDraft, History, HistoryQuery, StoredEvent } from "./history/history.ts";
import { MemoryHistory } from "./history/memory.ts";
import type { Delivery, Taken } from "./queue.ts";
import { resume, type ResumeDeps, type ResumeOutcome, ResumeSeam, SKIPPED } from "./resume.ts";

const ALL = [parseTopic("*")!];

function draft(n: number, type = "deploy.step"): EventDraft {
  return { tenant: "t", type, payload: { n }, id: `i${n}`, timestamp: "2026-01-01T00:00:00Z" };
}

function deliveryOf({ event, frame }: StoredEvent): Delivery & { seq: string } {
  return { frame, type: event.type, key: event.type, seq: event.seq };
}

/** A client as resume sees it: records what it is given, in order, with the announcements. */
class FakeClient {
  readonly tenant = "t";
  readonly seam = new ResumeSeam(4);
  closed = false;
  readonly log: string[] = [];

  deliverPaced(delivery: Delivery): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    this.log.push(`replay ${delivery.seq}`);
    return Promise.resolve(true);
  }

  deliverReleased(released: readonly Taken[]): void {
    for (const { delivery, droppedBefore } of released) {
      if (droppedBefore > 0) this.log.push(`lagged ${droppedBefore}`);
      if (delivery !== SKIPPED) this.log.push(`live ${delivery.seq}`);
    }
  }

  /** A live event routed to this client, as `Client.route` handles it. */
  route(delivery: Delivery & { seq: string }): void {
    const admission = this.seam.admit(delivery.seq);
    if (admission === "deliver") this.log.push(`live ${delivery.seq}`);
    else if (admission === "hold") this.seam.held!.offer(delivery);
  }
}

function setUp(overrides: Partial<ResumeDeps> = {}) {
  const history = new MemoryHistory(
    { maxEvents: 100, ttlMs: 60_000, maxBytes: 1 << 20 },
    new ManualClock(),
    "ep",
  );
  const counted: ResumeOutcome[] = [];
  const deps: ResumeDeps = {
    history,
    multiNode: false,
    replayLimit: 10,
    deliveryOf,
    quiet: () => false,
    count: (outcome) => counted.push(outcome),
    ...overrides,
  };
  return { history, deps, counted, client: new FakeClient() };
}

Deno.test("resume replays what matches after the cursor, announced before the first event", async () => {
  const { history, deps, counted, client } = setUp();
  await history.append("t", [draft(1), draft(2, "app.status"), draft(3), draft(4)]);
  const deploys = [parseTopic("deploy.*")!];
  const outcome = await resume(deps, client, deploys, {}, "ep-1", (outcome) => {
    client.log.push(`announce ${JSON.stringify(outcome)}`);
  }, () => false);
  assert.deepEqual(outcome, { recovered: true, replayed: 2 });
  assert.deepEqual(client.log, [
    'announce {"recovered":true,"replayed":2}',
    "replay ep-3",
    "replay ep-4",
  ]);
  assert.deepEqual(counted, [outcome]);
});

Deno.test("live events routed during the replay are held, then released without repeats", async () => {
  const { history, deps, client } = setUp();
  const stored = await history.append("t", [draft(1), draft(2), draft(3)]);
  const resumed = resume(deps, client, ALL, {}, "ep-1", () => {}, () => false);
  // While the history is read: ep-3 is routed live (the replay also carries it), then ep-4.
  client.route(deliveryOf(stored[2]!));
  const [fourth] = await history.append("t", [draft(4)]);
  client.route(deliveryOf(fourth!));
  await resumed;
  assert.deepEqual(client.log, ["replay ep-2", "replay ep-3", "live ep-4"]);
  // After the seam, an event at or before the last replayed cursor is skipped, a newer one not.
  client.route(deliveryOf(stored[1]!));
  const [fifth] = await history.append("t", [draft(5)]);
  client.route(deliveryOf(fifth!));
  assert.deepEqual(client.log.slice(3), ["live ep-5"]);
});

Deno.test("a cursor the history cannot place, or too many events, answer recovered:false", async () => {
  const { history, deps, client } = setUp({ replayLimit: 2 });
  await history.append("t", [draft(1), draft(2), draft(3), draft(4)]);
  const outcomes: ResumeOutcome[] = [];
  const announce = (outcome: ResumeOutcome) => outcomes.push(outcome);
  await resume(deps, client, ALL, {}, "ep-1", announce, () => false);
  await resume(deps, client, ALL, {}, "garbage", announce, () => false);
  await resume(deps, client, ALL, {}, "ep-9", announce, () => false);
  assert.deepEqual(outcomes.map((o) => o.recovered ? "recovered" : o.reason), [
    "too_many",
    "malformed",
    "future",
  ]);
  assert.deepEqual(client.log, [], "nothing replayed");
});

Deno.test("an unreachable history answers unavailable, a local history on many nodes not_shared", async () => {
  const failing = {
    shared: true,
    read: (_tenant: string, _query: HistoryQuery) => Promise.reject(new Error("Redis is down")),
  } as unknown as History;
  const down = setUp({ history: failing });
  const outcome = await resume(down.deps, down.client, ALL, {}, "ep-1", () => {}, () => false);
  assert.deepEqual(outcome, { recovered: false, replayed: 0, reason: "unavailable" });
  const local = setUp({ multiNode: true });
  await local.history.append("t", [draft(1), draft(2)]);
  const notShared = await resume(local.deps, local.client, ALL, {}, "ep-1", () => {}, () => false);
  assert.deepEqual(notShared, { recovered: false, replayed: 0, reason: "not_shared" });
});

Deno.test("a closed client gets neither the announcement nor a replay", async () => {
  const { history, deps, client } = setUp();
  await history.append("t", [draft(1), draft(2), draft(3)]);
  client.closed = true;
  let announced = false;
  await resume(deps, client, ALL, {}, "ep-1", () => (announced = true), () => false);
  assert.equal(announced, false);
  assert.deepEqual(client.log, []);
});

Deno.test("events a connection got under its implicit * are not replayed again", async () => {
  const { history, deps, client } = setUp();
  const stored = await history.append("t", [draft(1), draft(2), draft(3)]);
  client.seam.enterImplicitAll();
  client.route(deliveryOf(stored[1]!));
  client.route(deliveryOf(stored[2]!));
  const delivered = client.seam.delivered();
  assert.deepEqual(stored.map((s) => delivered(s.event.seq)), [false, true, true]);
  client.seam.leaveImplicitAll();
  await resume(deps, client, ALL, {}, "ep-0", () => {}, delivered);
  assert.deepEqual(client.log, ["live ep-2", "live ep-3", "replay ep-1"]);
});

Deno.test("seam: holds nest, and drops in the held queue are announced where they happened", () => {
  const seam = new ResumeSeam(1);
  seam.hold();
  seam.hold();
  assert.equal(seam.admit("e-2"), "hold");
  seam.held!.offer({ frame: "2", type: "t", key: "k", seq: "e-2" });
  assert.deepEqual(seam.release(null, []), [], "the outer hold still runs");
  // The held queue is full: the client's overflow policy drops the oldest to make room.
  assert.equal(seam.held!.offer({ frame: "3", type: "t", key: "k", seq: "e-3" }).state, "full");
  seam.held!.dropOldestEvent();
  seam.held!.offer({ frame: "3", type: "t", key: "k", seq: "e-3" });
  const released = seam.release("e-1", []);
  assert.deepEqual(released.map((t) => [t.delivery.frame, t.droppedBefore]), [["3", 1]]);
  assert.equal(seam.held, null);
});
