/**
 * The in-memory history: a bounded ring of recent events per tenant.
 *
 * Limits: one process only, and gone on restart. Every start is a new epoch, so a client
 * holding a cursor from before a restart is told it cannot resume (`recovered: false`). With a
 * multi-node bus, each node keeps only what was published on it: a client resumes only on the
 * node that gave it its cursor (use the Redis history to resume anywhere).
 * @module
 */

import type { HeraldEvent } from "../../events/envelope.ts";
import type { Clock } from "../clock.ts";
import {
  encodeFrameAt,
  type EventDraft,
  formatCursor,
  type History,
  type HistoryPage,
  type HistoryQuery,
  newEpoch,
  placeCursor,
  type StoredEvent,
} from "./history.ts";

/** How much a memory history keeps per tenant. */
export interface RetentionLimits {
  /** Events kept per tenant; the oldest go first. */
  readonly maxEvents: number;
  /** Events older than this (since they were appended) are dropped. */
  readonly ttlMs: number;
}

/** The memory history's limits: besides count and age, bytes, since it lives in the hub's heap. */
export interface MemoryRetentionLimits extends RetentionLimits {
  /**
   * Encoded frame bytes (UTF-16 code units, which equal bytes for ASCII) kept per tenant; the
   * oldest go first. A count alone is no memory bound when events can be 60 KiB each.
   */
  readonly maxBytes: number;
}

interface Entry extends StoredEvent {
  readonly storedAt: number;
}

/** One tenant's ring: entries hold consecutive cursor numbers `first..last`. */
class Ring {
  /** Slots before `head` were trimmed and hold null, so what they held can be collected now. */
  entries: (Entry | null)[] = [];
  head = 0;
  /** Newest cursor number handed out (0 before the first event). */
  last = 0;
  /** Sum of the retained frames' lengths. */
  bytes = 0;

  get size(): number {
    return this.entries.length - this.head;
  }

  /** Cursor number of the oldest retained entry (`last + 1` when empty). */
  get first(): number {
    return this.last - this.size + 1;
  }

  /** The retained entry at array index `index` (from `head` on). */
  at(index: number): Entry {
    return this.entries[index]!;
  }

  trim(limits: MemoryRetentionLimits, oldestAllowed: number): void {
    while (this.size > 0) {
      const oldest = this.at(this.head);
      const over = this.size > limits.maxEvents || this.bytes > limits.maxBytes ||
        oldest.storedAt < oldestAllowed;
      if (!over) break;
      this.bytes -= oldest.frame.length;
      this.entries[this.head] = null;
      this.head++;
    }
    if (this.head >= 1024 && this.head * 2 >= this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}

/**
 * Memory-backed {@linkcode History}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryHistory } from "./memory.ts";
 * import { ManualClock } from "../clock.ts";
 * const history = new MemoryHistory({ maxEvents: 2, ttlMs: 60_000, maxBytes: 1 << 20 }, new ManualClock(), "ep");
 * const draft = (n: number) => ({
 *   tenant: "t",
 *   type: "deploy.step",
 *   payload: { n },
 *   id: `i${n}`,
 *   timestamp: "2026-01-01T00:00:00Z",
 * });
 * await history.append("t", [draft(1), draft(2), draft(3)]);
 * const page = await history.read("t", { since: "ep-1", limit: 10 });
 * assert.ok(page.state === "ok" && page.events.map((e) => e.event.seq).join() === "ep-2,ep-3");
 * assert.deepEqual(await history.read("t", { since: "ep-0", limit: 10 }), { state: "lost", reason: "expired" });
 * ```
 */
export class MemoryHistory implements History {
  readonly kind = "memory";
  readonly shared = false;
  readonly epoch: string;
  readonly #limits: MemoryRetentionLimits;
  readonly #clock: Clock;
  readonly #rings = new Map<string, Ring>();

  constructor(limits: MemoryRetentionLimits, clock: Clock, epoch: string = newEpoch()) {
    this.#limits = limits;
    this.#clock = clock;
    this.epoch = epoch;
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * All or nothing: every frame is encoded before the ring changes, so an event that cannot be
   * encoded rejects the batch and hands out no cursor.
   */
  append(tenant: string, drafts: readonly EventDraft[]): Promise<StoredEvent[]> {
    const now = this.#clock.now();
    const last = this.#rings.get(tenant)?.last ?? 0;
    let stored: Entry[];
    try {
      stored = drafts.map((draft, index) => {
        const event: HeraldEvent = { ...draft, seq: formatCursor(this.epoch, last + index + 1) };
        return { event, frame: encodeFrameAt(event, index), storedAt: now };
      });
    } catch (error) {
      return Promise.reject(error);
    }
    let ring = this.#rings.get(tenant);
    if (ring === undefined) {
      ring = new Ring();
      this.#rings.set(tenant, ring);
    }
    for (const entry of stored) {
      ring.entries.push(entry);
      ring.bytes += entry.frame.length;
    }
    ring.last = last + stored.length;
    ring.trim(this.#limits, now - this.#limits.ttlMs);
    return Promise.resolve(stored);
  }

  read(tenant: string, query: HistoryQuery): Promise<HistoryPage> {
    const ring = this.#rings.get(tenant) ?? new Ring();
    ring.trim(this.#limits, this.#clock.now() - this.#limits.ttlMs);
    let from = ring.head;
    if (query.since !== null) {
      const place = placeCursor(query.since, this.epoch, ring.first, ring.last);
      if ("lost" in place) return Promise.resolve({ state: "lost", reason: place.lost });
      from = ring.head + (place.after - ring.first + 1);
    }
    const events: StoredEvent[] = [];
    let truncated = false;
    for (let index = from; index < ring.entries.length; index++) {
      const entry = ring.at(index);
      if (query.match !== undefined && !query.match(entry.event)) continue;
      if (events.length === query.limit) {
        truncated = true;
        break;
      }
      events.push(entry);
    }
    return Promise.resolve({ state: "ok", events, truncated });
  }

  tenants(): Promise<string[]> {
    return Promise.resolve([...this.#rings.keys()]);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
