/**
 * Routes events in cursor order when several nodes append to one shared history (KV, Redis).
 *
 * A shared history hands out contiguous cursors per tenant, but events reach a node in bus
 * arrival order, which can differ: node A takes cursor 5, node B cursor 6, and B's message may
 * arrive first. A client that got 6 but not yet 5, then reconnected with `since` = 6, would never
 * get 5, and resume would report success. So every node routes a tenant's events strictly in
 * cursor order: an event that arrives early waits for those before it. A hole still open after
 * `waitMs` (its bus message was lost, or its publish failed after the history stored it) is filled
 * from the history, where every cursor handed out is stored; what the history no longer holds is
 * reported as a gap, never skipped silently.
 * @module
 */

import type { Clock } from "./clock.ts";
import { formatCursor, parseCursor, type StoredEvent } from "./history/history.ts";

/** What filling a hole from the history found. */
export type Fill =
  | { readonly state: "ok"; readonly events: readonly StoredEvent[] }
  | { readonly state: "lost" }
  | { readonly state: "unavailable" };

/** What a {@linkcode CursorOrder} needs. */
export interface CursorOrderOptions {
  /** How long a hole may stay open before it is filled from the history. */
  readonly waitMs: number;
  /** Events one tenant may hold waiting; past it, the hole is filled at once. */
  readonly maxPending: number;
  readonly clock: Clock;
  /** Reads at most `count` stored events of `tenant` after cursor `after`. */
  readonly fill: (tenant: string, after: string, count: number) => Promise<Fill>;
  /** Routes one event; `filled` when it came from the history rather than the bus. */
  readonly route: (entry: StoredEvent, filled: boolean) => void;
  /** `missed` events of `tenant` are gone: the history no longer holds them. */
  readonly gap: (tenant: string, missed: number) => void;
}

interface TenantOrder {
  readonly epoch: string;
  /** The next cursor number to route; anything before it was routed or predates this node. */
  next: number;
  /** Events waiting, by cursor number; null for a cursor discarded by a failed publish. */
  readonly pending: Map<number, StoredEvent | null>;
  fillScheduled: boolean;
}

/** Routes each tenant's events in cursor order. */
export class CursorOrder {
  readonly #options: CursorOrderOptions;
  readonly #tenants = new Map<string, TenantOrder>();

  constructor(options: CursorOrderOptions) {
    this.#options = options;
  }

  /** Events waiting for an earlier cursor, all tenants together. */
  get pending(): number {
    let count = 0;
    for (const order of this.#tenants.values()) count += order.pending.size;
    return count;
  }

  /**
   * Continues a tenant after cursor number `last` of `epoch`: what the history held when this
   * node started. Without it a tenant starts at cursor 1, where every epoch starts.
   */
  startAfter(tenant: string, epoch: string, last: number): void {
    this.#tenants.set(tenant, { epoch, next: last + 1, pending: new Map(), fillScheduled: false });
  }

  /**
   * Never routes cursor `seq`: its publish failed after the history stored it (the producer was
   * answered 503), and the history marks it discarded. Its number is skipped without a gap.
   */
  discard(tenant: string, seq: string): void {
    const cursor = parseCursor(seq);
    const order = this.#tenants.get(tenant);
    if (cursor === null || order === undefined || order.epoch !== cursor.epoch) return;
    if (cursor.n < order.next) return;
    if (cursor.n === order.next) {
      order.next++;
      this.#drain(order);
      return;
    }
    order.pending.set(cursor.n, null);
  }

  /** Routes `entry` now if it is next in cursor order, else holds it until it is. */
  accept(entry: StoredEvent): void {
    const { tenant, seq } = entry.event;
    const cursor = parseCursor(seq);
    if (cursor === null) {
      this.#options.route(entry, false);
      return;
    }
    let order = this.#tenants.get(tenant);
    if (order === undefined || order.epoch !== cursor.epoch) {
      // A tenant new to the history, or a new epoch (the store lost data): both count from 1.
      if (order !== undefined) this.#retire(tenant, order);
      order = { epoch: cursor.epoch, next: 1, pending: new Map(), fillScheduled: false };
      this.#tenants.set(tenant, order);
    }
    // Already routed (filled from the history before its bus message came), or stored before
    // this node started: a client that wants it resumes from the history.
    if (cursor.n < order.next) return;
    if (cursor.n === order.next) {
      this.#options.route(entry, false);
      order.next++;
      this.#drain(order);
      return;
    }
    if (order.pending.get(cursor.n) === null) return;
    order.pending.set(cursor.n, entry);
    if (order.pending.size > this.#options.maxPending) void this.#fill(tenant, order);
    else this.#scheduleFill(tenant, order);
  }

  /**
   * Ends a tenant's old epoch: the history started a new one, so the holes still open in the
   * old one can no longer be filled (its data is gone). What waits is routed in order, and the
   * holes before it are reported as gaps, never skipped silently. The bus carries every entry
   * of the old epoch before any of the new one, so nothing of the old epoch comes later.
   */
  #retire(tenant: string, order: TenantOrder): void {
    const waiting = [...order.pending.entries()].sort(([a], [b]) => a - b);
    order.pending.clear();
    for (const [n, entry] of waiting) {
      if (n > order.next) this.#options.gap(tenant, n - order.next);
      if (entry !== null) this.#options.route(entry, false);
      order.next = n + 1;
    }
  }

  #drain(order: TenantOrder): void {
    for (let entry = order.pending.get(order.next); entry !== undefined;) {
      order.pending.delete(order.next);
      if (entry !== null) this.#options.route(entry, false);
      order.next++;
      entry = order.pending.get(order.next);
    }
  }

  #scheduleFill(tenant: string, order: TenantOrder): void {
    if (order.fillScheduled) return;
    order.fillScheduled = true;
    this.#options.clock.sleep(this.#options.waitMs).then(() => {
      order.fillScheduled = false;
      return this.#fill(tenant, order);
    });
  }

  /** Fills the hole before the earliest waiting event from the history. */
  async #fill(tenant: string, order: TenantOrder): Promise<void> {
    if (order.pending.size === 0 || this.#tenants.get(tenant) !== order) return;
    const waitingFrom = Math.min(...order.pending.keys());
    const from = order.next;
    const found = await this.#options.fill(
      tenant,
      formatCursor(order.epoch, from - 1),
      waitingFrom - from,
    );
    // The tenant moved to a new epoch meanwhile: the old order was retired.
    if (this.#tenants.get(tenant) !== order) return;
    if (found.state === "unavailable") {
      this.#scheduleFill(tenant, order);
      return;
    }
    if (order.next !== from) {
      // The bus delivered while the history was read: look again at what is still missing.
      if (order.pending.size > 0) this.#scheduleFill(tenant, order);
      return;
    }
    if (found.state === "ok") {
      // The history's answer is exact: a number in the hole it does not return was discarded
      // (its publish failed after it was stored) and is skipped without a gap.
      for (const entry of found.events) {
        const cursor = parseCursor(entry.event.seq);
        if (cursor === null || cursor.n < order.next || cursor.n >= waitingFrom) break;
        this.#options.route(entry, true);
        order.next = cursor.n + 1;
      }
      order.next = waitingFrom;
    }
    if (order.next < waitingFrom) {
      this.#options.gap(tenant, waitingFrom - order.next);
      order.next = waitingFrom;
    }
    this.#drain(order);
    if (order.pending.size > 0) this.#scheduleFill(tenant, order);
  }
}
