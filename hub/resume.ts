/**
 * Resume: a client that lost its connection subscribes with the cursor of the last event it
 * got, and the hub replays what it missed, then continues live, with no event twice and none
 * missing at the seam. Everything that decides this lives here:
 *
 * - what to replay: the retained events after `since` that match the subscription, minus what
 *   the connection already received under its implicit `*` ({@linkcode ResumeSeam.delivered})
 *   and what routing kept quiet (a repeated `resource.status`: no client sees it, live or not);
 * - whether it can: {@linkcode ResumeOutcome}, `recovered: false` with a reason when the
 *   history cannot place the cursor, holds more than the replay limit, is unreachable, or is
 *   not shared between nodes;
 * - the seam: live events routed while the history is read and the replay is queued are held
 *   ({@linkcode ResumeSeam.hold}), then released in order, skipping every cursor up to the
 *   last one the client has (the one it resumed from, or the last replayed);
 * - the order of frames: the `subscribed` reply goes before the first replayed event.
 *
 * The client owns one {@linkcode ResumeSeam}; the hub calls {@linkcode resume}.
 * @module
 */

import type { HeraldEvent } from "../events/envelope.ts";
import { matchesFilter, type SubscriptionFilter } from "../events/messages.ts";
import { topicMatches, type TopicPattern } from "../events/topic.ts";
import {
  compareCursors,
  type History,
  type HistoryPage,
  type LostReason,
  type StoredEvent,
} from "./history/history.ts";
import { type Delivery, DeliveryQueue, type Taken } from "./queue.ts";

/** How a resume ended: `recovered` false means the client must load a snapshot. */
export type ResumeOutcome =
  | { readonly recovered: true; readonly replayed: number }
  | {
    readonly recovered: false;
    readonly replayed: 0;
    readonly reason: LostReason | "too_many" | "unavailable" | "not_shared";
  };

/** What a live event routed to a resuming client does (see {@linkcode ResumeSeam.admit}). */
export type Admission = "deliver" | "hold" | "skip";

/**
 * One connection's side of resume: whether it still holds its implicit `*` and which live
 * cursors it got under it, the live events held while replays run, and the cursor up to which
 * it has everything. Mechanism only: the client applies its overflow policy to the held queue.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ResumeSeam } from "./resume.ts";
 * const seam = new ResumeSeam(10);
 * seam.hold();
 * assert.equal(seam.admit("e-3"), "hold");
 * seam.held!.offer({ frame: "3", type: "t", key: "k", seq: "e-3" });
 * seam.held!.offer({ frame: "4", type: "t", key: "k", seq: "e-4" });
 * // The replay carried e-1..e-3: only e-4 is released.
 * const released = seam.release("e-0", ["e-1", "e-2", "e-3"]);
 * assert.deepEqual(released.map((taken) => taken.delivery.frame), ["4"]);
 * assert.equal(seam.admit("e-2"), "skip");
 * assert.equal(seam.admit("e-5"), "deliver");
 * ```
 */
export class ResumeSeam {
  readonly #capacity: number;
  #implicitAll = false;
  /** Cursors of the first and last live events routed under the implicit `*` (null before any). */
  #firstSeq: string | null = null;
  #lastSeq: string | null = null;
  /** Live events held back while replays run; null when none runs. */
  #held: DeliveryQueue | null = null;
  #holds = 0;
  /** The client has every event up to this cursor (resumed from or replayed): skip those. */
  #upTo: string | null = null;

  /** `capacity`: most live events held during a replay before the overflow policy applies. */
  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  /** True while the connection holds only the `*` it got for connecting without a topic. */
  get implicitAll(): boolean {
    return this.#implicitAll;
  }

  /** The connection connected without a topic and holds `*` until its first explicit choice. */
  enterImplicitAll(): void {
    this.#implicitAll = true;
  }

  /** The connection chose its subscriptions: the implicit `*` ends. */
  leaveImplicitAll(): void {
    this.#implicitAll = false;
  }

  /** The queue live events are held in while a replay runs, or null. */
  get held(): DeliveryQueue | null {
    return this.#held;
  }

  /**
   * What a live event with cursor `seq` does: `skip` when the client has it already (routing
   * follows cursor order, so one at or before the last replayed cursor was in the replay's
   * read), `hold` while a replay runs, else `deliver`.
   */
  admit(seq: string): Admission {
    if (this.#upTo !== null) {
      const order = compareCursors(seq, this.#upTo);
      if (order !== null && order <= 0) return "skip";
      this.#upTo = null;
    }
    if (this.#implicitAll) {
      this.#firstSeq ??= seq;
      this.#lastSeq = seq;
    }
    return this.#held === null ? "deliver" : "hold";
  }

  /**
   * Whether the connection received `seq` live under its implicit `*`: every event from the
   * first to the last routed one reached it (routing follows cursor order).
   */
  delivered(): (seq: string) => boolean {
    const first = this.#firstSeq;
    const last = this.#lastSeq;
    if (!this.#implicitAll || first === null || last === null) return () => false;
    return (seq) =>
      (compareCursors(seq, first) ?? -1) >= 0 && (compareCursors(seq, last) ?? 1) <= 0;
  }

  /** Starts holding live events back until the matching `release` (replays nest). */
  hold(): void {
    this.#holds++;
    this.#held ??= new DeliveryQueue(this.#capacity);
  }

  /**
   * Ends one hold. `since` is the cursor the client resumed from when the history placed it
   * (the client has everything up to it), `replayed` the cursors the replay delivered: neither
   * is delivered again, held or arriving later. When the last hold ends, returns the held
   * events to deliver, in order (with the count of events dropped before each); else none.
   */
  release(since: string | null, replayed: Iterable<string>): Taken[] {
    if (since !== null) this.#raise(since);
    for (const seq of replayed) this.#raise(seq);
    if (--this.#holds > 0) return [];
    const held = this.#held;
    this.#held = null;
    const upTo = this.#upTo;
    const released: Taken[] = [];
    for (let taken = held?.shift(); taken !== undefined; taken = held?.shift()) {
      const order = upTo === null ? null : compareCursors(taken.delivery.seq ?? "", upTo);
      if (order === null || order > 0) released.push(taken);
      else if (taken.droppedBefore > 0) {
        released.push({ delivery: SKIPPED, droppedBefore: taken.droppedBefore });
      }
    }
    return released;
  }

  #raise(seq: string): void {
    const order = this.#upTo === null ? 1 : compareCursors(seq, this.#upTo);
    if (order !== null && order > 0) this.#upTo = seq;
  }
}

/** Stands for a held event the replay carried; only its drop count matters. */
export const SKIPPED: Delivery = { frame: "", type: "skipped", key: null };

/** What the resume of one client needs from it. */
export interface Resumable {
  readonly closed: boolean;
  readonly tenant: string;
  readonly seam: ResumeSeam;
  /** Queues a replayed event once there is room; false when the client closed meanwhile. */
  deliverPaced(delivery: Delivery): Promise<boolean>;
  /** Delivers the live events a hold kept back. */
  deliverReleased(released: readonly Taken[]): void;
}

/** What a resume reads from and reports to. */
export interface ResumeDeps {
  readonly history: History;
  /** A history of this node alone cannot replay for a hub that shares a bus with others. */
  readonly multiNode: boolean;
  /** Most events one resume replays. */
  readonly replayLimit: number;
  /** An event's delivery, shared with live routing. */
  readonly deliveryOf: (stored: StoredEvent) => Delivery;
  /** Events routing kept quiet (not broadcast live): a replay leaves them out too. */
  readonly quiet: (event: HeraldEvent) => boolean;
  /** What the subscription's dialect adds to its filter (dorgu's namespace); none: nothing. */
  readonly matches?: (event: HeraldEvent) => boolean;
  /** Counts the outcome (`recovered` or the reason). */
  readonly count: (outcome: ResumeOutcome) => void;
}

/**
 * The outcome of a history read for a resume.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { outcomeOf } from "./resume.ts";
 * assert.deepEqual(outcomeOf({ state: "lost", reason: "expired" }), {
 *   recovered: false,
 *   replayed: 0,
 *   reason: "expired",
 * });
 * assert.deepEqual(outcomeOf({ state: "ok", events: [], truncated: true }).recovered, false);
 * ```
 */
export function outcomeOf(page: HistoryPage): ResumeOutcome {
  if (page.state === "lost") return { recovered: false, replayed: 0, reason: page.reason };
  if (page.truncated) return { recovered: false, replayed: 0, reason: "too_many" };
  return { recovered: true, replayed: page.events.length };
}

/**
 * Replays what `client` missed after cursor `since` on `topics` with `filter`, holding live
 * events meanwhile; the client is already subscribed. `announce` runs once the outcome is
 * known, before the first replayed event is queued. Resolves with the outcome.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ResumeSeam, resume } from "./resume.ts";
 * import { MemoryHistory } from "./history/memory.ts";
 * import { ManualClock } from "./clock.ts";
 * import { parseTopic } from "../events/topic.ts";
 * const history = new MemoryHistory({ maxEvents: 10, ttlMs: 60_000, maxBytes: 1 << 20 }, new ManualClock(), "ep");
 * const draft = (n: number) => ({ tenant: "t", type: "deploy.step", payload: { n }, id: `i${n}`, timestamp: "2026-01-01T00:00:00Z" });
 * await history.append("t", [draft(1), draft(2), draft(3)]);
 * const replayed: string[] = [];
 * const client = {
 *   closed: false,
 *   tenant: "t",
 *   seam: new ResumeSeam(10),
 *   deliverPaced: (delivery: { seq?: string }) => (replayed.push(delivery.seq!), Promise.resolve(true)),
 *   deliverReleased: () => {},
 * };
 * const deps = {
 *   history,
 *   multiNode: false,
 *   replayLimit: 100,
 *   deliveryOf: ({ event, frame }: { event: { type: string; seq: string }; frame: string }) => ({ frame, type: event.type, key: null, seq: event.seq }),
 *   quiet: () => false,
 *   count: () => {},
 * };
 * const outcome = await resume(deps, client, [parseTopic("*")!], {}, "ep-1", () => {}, () => false);
 * assert.deepEqual(outcome, { recovered: true, replayed: 2 });
 * assert.deepEqual(replayed, ["ep-2", "ep-3"]);
 * ```
 */
export async function resume(
  deps: ResumeDeps,
  client: Resumable,
  topics: readonly TopicPattern[],
  filter: SubscriptionFilter,
  since: string,
  announce: (outcome: ResumeOutcome) => void,
  delivered: (seq: string) => boolean,
): Promise<ResumeOutcome> {
  client.seam.hold();
  const replayed: string[] = [];
  let outcome: ResumeOutcome = { recovered: false, replayed: 0, reason: "unavailable" };
  try {
    const match = (event: HeraldEvent) =>
      matchesFilter(filter, event) && topics.some((topic) => topicMatches(topic, event.type)) &&
      !delivered(event.seq) && !deps.quiet(event) && (deps.matches?.(event) ?? true);
    outcome = await replay(deps, client, match, since, replayed, announce);
    deps.count(outcome);
  } finally {
    // Only a cursor the history placed says what the client has (a client can send any).
    client.deliverReleased(client.seam.release(outcome.recovered ? since : null, replayed));
  }
  return outcome;
}

async function replay(
  deps: ResumeDeps,
  client: Resumable,
  match: (event: HeraldEvent) => boolean,
  since: string,
  replayed: string[],
  announce: (outcome: ResumeOutcome) => void,
): Promise<ResumeOutcome> {
  if (!deps.history.shared && deps.multiNode) {
    // This node's history holds only what was published on it, not what other nodes
    // published: a replay from it would skip their events without saying so.
    const outcome: ResumeOutcome = { recovered: false, replayed: 0, reason: "not_shared" };
    if (!client.closed) announce(outcome);
    return outcome;
  }
  let outcome: ResumeOutcome;
  let events: readonly StoredEvent[] = [];
  try {
    const page = await deps.history.read(client.tenant, {
      since,
      limit: deps.replayLimit,
      match,
    });
    outcome = outcomeOf(page);
    if (outcome.recovered && page.state === "ok") events = page.events;
  } catch {
    outcome = { recovered: false, replayed: 0, reason: "unavailable" };
  }
  if (client.closed) return outcome;
  announce(outcome);
  for (const stored of events) {
    if (!(await client.deliverPaced(deps.deliveryOf(stored)))) break;
    replayed.push(stored.event.seq);
  }
  return outcome;
}
