/**
 * The history seam: the store that gives every accepted event its `seq` cursor and keeps the
 * recent ones per tenant, so a client that lost its connection can resume after its last
 * cursor and a hub can rebuild its state.
 *
 * Contract every implementation documents against:
 * - `append(tenant, drafts)` assigns each draft a cursor greater than every cursor this store
 *   handed out before for the tenant, stores the events and resolves with them in order. It is
 *   all or nothing: it rejects (with {@linkcode EventTooLargeError} for an event the store
 *   cannot hold, {@linkcode HistoryUnavailableError} when the store is unreachable) and then
 *   none of the drafts was stored and no cursor is visible to readers. Calls made by one hub
 *   resolve in call order, so the hub can deliver in cursor order.
 * - Assigning and storing are one step: once a reader sees cursor `n`, every event with a lower
 *   cursor of the same epoch that is still retained is visible too.
 * - `read` returns the retained events after a cursor, oldest first, or says the cursor cannot
 *   be placed (malformed, another epoch, in the future, or older than what is retained). It never
 *   returns a partial answer silently: `truncated` says more matched than `limit`.
 * - Retention is bounded by count and age per tenant; what falls out is gone for good.
 *
 * Cursors are `<epoch>-<n>`: the epoch names one lifetime of the sequence (a memory history
 * starts a new one per process, a durable one keeps its epoch in the store), `n` counts up per
 * tenant from 1. Clients treat them as opaque; the hub compares them with
 * {@linkcode compareCursors}, which knows only two cursors of one epoch are comparable.
 * @module
 */

import { encodeEventFrame, type HeraldEvent } from "../../events/envelope.ts";

/** An event before the history gave it its cursor. */
export type EventDraft = Omit<HeraldEvent, "seq">;

/** An event with its wire frame, serialized once when it was appended. */
export interface StoredEvent {
  readonly event: HeraldEvent;
  readonly frame: string;
}

/** Why a cursor cannot be placed in a history. */
export type LostReason = "malformed" | "epoch" | "future" | "expired";

/** What `read` found. */
export type HistoryPage =
  | {
    readonly state: "ok";
    /** Matching events after the cursor, oldest first, at most `limit`. */
    readonly events: readonly StoredEvent[];
    /** More events matched than `limit`. */
    readonly truncated: boolean;
  }
  | { readonly state: "lost"; readonly reason: LostReason };

/** What to read. */
export interface HistoryQuery {
  /** Read events after this cursor; null reads from the oldest retained event. */
  readonly since: string | null;
  /** Most events returned. */
  readonly limit: number;
  /** Only events this accepts count (topic pattern and filters); all when absent. */
  readonly match?: (event: HeraldEvent) => boolean;
}

/** Keeps recent events per tenant and hands out their cursors. */
export interface History {
  /** `memory`, `kv` or `redis`: shown in logs and `/ready`. */
  readonly kind: string;
  /**
   * True when every node appends to this one store (KV, Redis): cursors are then contiguous
   * across nodes and a client may resume on any node. False for a per-process store.
   */
  readonly shared: boolean;
  /** Opens the store (and, for a durable one, reads its epoch). Call once before use. */
  start(): Promise<void>;
  /** The epoch cursors of this history carry (valid after `start`). */
  readonly epoch: string;
  append(tenant: string, drafts: readonly EventDraft[]): Promise<StoredEvent[]>;
  read(tenant: string, query: HistoryQuery): Promise<HistoryPage>;
  /**
   * Marks stored events whose publish failed afterwards (the producer was answered 503) as
   * discarded: reads skip them without reporting a gap, so no node delivers them later. Only a
   * shared history needs it (another node could fill a hole with them); optional elsewhere.
   */
  discard?(tenant: string, seqs: readonly string[]): Promise<void>;
  /** Tenants that have retained events (to rebuild state on start). */
  tenants(): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * An event (or a whole batch) is larger than the history can store; nothing was stored.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { EventTooLargeError } from "./history.ts";
 * const error = new EventTooLargeError("Event 2 is larger than the history holds", 2);
 * assert.equal(error.index, 2);
 * ```
 */
export class EventTooLargeError extends Error {
  /** Position of the event in its batch; null when the batch as a whole is too large. */
  readonly index: number | null;

  constructor(message: string, index: number | null) {
    super(message);
    this.name = "EventTooLargeError";
    this.index = index;
  }
}

/**
 * An event cannot be serialized (its payload nests deeper than the runtime can encode); nothing
 * was stored. Answered like a too-large event: `bad_event` with its index. Validation refuses
 * such events first (`HERALD_MAX_EVENT_DEPTH`); this keeps an append all or nothing regardless.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { EventTooLargeError, UnencodableEventError } from "./history.ts";
 * const error = new UnencodableEventError("the event cannot be encoded", 3);
 * assert.ok(error instanceof EventTooLargeError && error.index === 3);
 * ```
 */
export class UnencodableEventError extends EventTooLargeError {
  constructor(message: string, index: number) {
    super(message, index);
    this.name = "UnencodableEventError";
  }
}

/**
 * The wire frame of `event`, the `index`-th of its batch. Histories encode every frame of a
 * batch before they change anything, so a frame that cannot be encoded rejects the whole append
 * ({@linkcode UnencodableEventError}) and no cursor is handed out.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeFrameAt, UnencodableEventError } from "./history.ts";
 * const event = { tenant: "t", type: "x.y", payload: {}, id: "e1", seq: "ep-1", timestamp: "" };
 * assert.equal(JSON.parse(encodeFrameAt(event, 0)).seq, "ep-1");
 * // A BigInt cannot be serialized.
 * const bad = { ...event, payload: { big: 1n as unknown as number } };
 * assert.throws(() => encodeFrameAt(bad, 2), UnencodableEventError);
 * ```
 */
export function encodeFrameAt(event: HeraldEvent, index: number): string {
  return encodingAt(index, () => encodeEventFrame(event));
}

/**
 * Runs `encode` for the `index`-th event of a batch, turning a failure into
 * {@linkcode UnencodableEventError}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodingAt, UnencodableEventError } from "./history.ts";
 * assert.equal(encodingAt(0, () => "frame"), "frame");
 * assert.throws(() => encodingAt(4, () => JSON.stringify(1n)), UnencodableEventError);
 * ```
 */
export function encodingAt<T>(index: number, encode: () => T): T {
  try {
    return encode();
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new UnencodableEventError(`the event cannot be encoded (${reason})`, index);
  }
}

/**
 * The history store cannot be reached; nothing was stored.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { HistoryUnavailableError } from "./history.ts";
 * assert.equal(new HistoryUnavailableError("Redis timed out").name, "HistoryUnavailableError");
 * ```
 */
export class HistoryUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HistoryUnavailableError";
  }
}

/** A parsed cursor. */
export interface Cursor {
  readonly epoch: string;
  readonly n: number;
}

const CURSOR_PATTERN = /^([0-9a-z]{1,32})-(0|[1-9][0-9]{0,15})$/;

/**
 * Parses a cursor; null when it is not one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseCursor } from "./history.ts";
 * assert.deepEqual(parseCursor("lx3k9a-42"), { epoch: "lx3k9a", n: 42 });
 * assert.equal(parseCursor("42"), null);
 * ```
 */
export function parseCursor(seq: string): Cursor | null {
  const match = CURSOR_PATTERN.exec(seq);
  if (match === null) return null;
  const n = Number(match[2]);
  return Number.isSafeInteger(n) ? { epoch: match[1]!, n } : null;
}

/**
 * Formats a cursor.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatCursor, parseCursor } from "./history.ts";
 * assert.equal(formatCursor("ep", 42), "ep-42");
 * assert.deepEqual(parseCursor("ep-42"), { epoch: "ep", n: 42 });
 * ```
 */
export function formatCursor(epoch: string, n: number): string {
  return `${epoch}-${n}`;
}

/**
 * Orders two cursors of one epoch: negative, zero or positive like a sort comparator; null
 * when they cannot be compared (malformed, or from different epochs).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compareCursors } from "./history.ts";
 * assert.ok(compareCursors("e1-9", "e1-10")! < 0);
 * assert.equal(compareCursors("e1-9", "e2-10"), null);
 * ```
 */
export function compareCursors(a: string, b: string): number | null {
  const left = parseCursor(a);
  const right = parseCursor(b);
  if (left === null || right === null || left.epoch !== right.epoch) return null;
  return left.n - right.n;
}

/**
 * A fresh epoch: the time in base 36 plus a random suffix, so two starts in one ms differ.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { newEpoch } from "./history.ts";
 * assert.notEqual(newEpoch(), newEpoch());
 * assert.ok(!newEpoch().includes("-"), "the epoch never holds the cursor's separator");
 * ```
 */
export function newEpoch(): string {
  const random = crypto.getRandomValues(new Uint32Array(1))[0]!.toString(36);
  return `${Date.now().toString(36)}${random.padStart(7, "0")}`;
}

/**
 * Where a cursor sits in a tenant's retained range `first..last` (cursor numbers): null when
 * reading after it is exact, else why not. `first` is the oldest retained number (`last + 1`
 * when nothing is retained), `last` the newest ever handed out (0 for none).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { placeCursor } from "./history.ts";
 * // Retained: numbers 5..9 of epoch "ep".
 * assert.deepEqual(placeCursor("ep-6", "ep", 5, 9), { after: 6 });
 * assert.deepEqual(placeCursor("ep-2", "ep", 5, 9), { lost: "expired" });
 * assert.deepEqual(placeCursor("old-6", "ep", 5, 9), { lost: "epoch" });
 * ```
 */
export function placeCursor(
  since: string,
  epoch: string,
  first: number,
  last: number,
): { readonly after: number } | { readonly lost: LostReason } {
  const cursor = parseCursor(since);
  if (cursor === null) return { lost: "malformed" };
  if (cursor.epoch !== epoch) return { lost: "epoch" };
  if (cursor.n > last) return { lost: "future" };
  if (cursor.n < first - 1) return { lost: "expired" };
  return { after: cursor.n };
}
