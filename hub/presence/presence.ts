/**
 * The presence seam: who is connected, on which node. The agents feature routes a command to
 * the node an agent's connection is on (then sends it there as a directed bus message); a
 * dashboard lists who is online.
 *
 * Contract every implementation documents against:
 * - `join` records a connection of this node; `leave` removes it. Both are idempotent.
 * - `list(tenant)` and `find(tenant, connection)` answer for every live node, never for another
 *   tenant; `liveNodes(nodes)` answers which nodes are alive. They may lag a `join` or `leave` on another node by one round trip, not more.
 * - A node that stops cleanly (`close`) removes its entries. The entries of a node that died
 *   without closing disappear from answers within the implementation's liveness window (the
 *   memory presence: with the process; the redis presence: `ttlMs` after its last heartbeat)
 *   and are removed from the store when an answer notices them.
 * - Failure: calls reject when the store is unreachable; the caller decides (presence is
 *   advisory, it never blocks a connection).
 * @module
 */

/** One connection, as presence knows it. */
export interface PresenceEntry {
  readonly tenant: string;
  /** Unique across nodes (the client id, which carries the node). */
  readonly connection: string;
  /** The node the connection is on: where directed messages for it go. */
  readonly node: string;
  /** The principal's subject (an agent's id, `anonymous`...). */
  readonly subject: string;
  /** `websocket`, `sse`... */
  readonly transport: string;
  /** When it connected, in milliseconds since the epoch. */
  readonly since: number;
}

/** Who is connected on which node. */
export interface Presence {
  /** `memory` or `redis`: shown in logs. */
  readonly kind: string;
  start(): Promise<void>;
  join(entry: PresenceEntry): Promise<void>;
  leave(tenant: string, connection: string): Promise<void>;
  /** Every connection of `tenant` on a live node, oldest first. */
  list(tenant: string): Promise<PresenceEntry[]>;
  /** One connection's entry, or null when it is not connected (or its node is dead). */
  find(tenant: string, connection: string): Promise<PresenceEntry | null>;
  /** Those of `nodes` that are alive (within the liveness window), whether or not they hold
   * connections. */
  liveNodes(nodes: readonly string[]): Promise<Set<string>>;
  /** Removes this node's entries and stops. */
  close(): Promise<void>;
}

/**
 * Orders entries oldest first, then by connection id.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { byAge } from "./presence.ts";
 * const entry = (connection: string, since: number) =>
 *   ({ tenant: "t", connection, node: "n", subject: "s", transport: "websocket", since });
 * assert.deepEqual([entry("b", 2), entry("a", 2), entry("c", 1)].sort(byAge).map((e) => e.connection), [
 *   "c",
 *   "a",
 *   "b",
 * ]);
 * ```
 */
export function byAge(a: PresenceEntry, b: PresenceEntry): number {
  return a.since - b.since ||
    (a.connection < b.connection ? -1 : a.connection > b.connection ? 1 : 0);
}
