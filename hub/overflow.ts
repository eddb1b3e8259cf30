/**
 * Overflow policies: what happens when an event arrives for a client whose queue is full.
 * The policy lives here, apart from the queue mechanism it drives.
 * @module
 */

import { LAG_REASONS, type LagReason } from "../events/codes.ts";
import type { Delivery, DeliveryQueue } from "./queue.ts";

/** The policies `HERALD_OVERFLOW` accepts. */
export const OVERFLOW_POLICIES = ["disconnect", "drop-oldest", "conflate"] as const;
/** One of {@linkcode OVERFLOW_POLICIES}. */
export type OverflowPolicy = typeof OVERFLOW_POLICIES[number];

/** What enqueueing did. `dropped` events were removed to make room (the client is told). */
export type EnqueueOutcome =
  | { readonly action: "queued"; readonly dropped: number; readonly reason?: DropReason }
  | { readonly action: "disconnect" }
  | { readonly action: "closed" };

/** Why events were dropped for a client. */
export type DropReason = LagReason;

const QUEUED: EnqueueOutcome = { action: "queued", dropped: 0 };
const DISCONNECT: EnqueueOutcome = { action: "disconnect" };
const CLOSED: EnqueueOutcome = { action: "closed" };

/**
 * Offers `item` to `queue`, applying `policy` when the queue is full.
 * - `disconnect`: nothing is dropped; the caller closes the client as a slow consumer.
 * - `drop-oldest`: the oldest queued event makes room.
 * - `conflate`: queued events superseded by a newer one with the same type and appId go;
 *   when none are, the oldest event makes room as in `drop-oldest`.
 */
export function enqueue(
  queue: DeliveryQueue,
  item: Delivery,
  policy: OverflowPolicy,
): EnqueueOutcome {
  const first = queue.offer(item);
  if (first.state === "ok") return QUEUED;
  if (first.state === "closed") return CLOSED;
  if (policy === "disconnect") return DISCONNECT;
  let dropped = 0;
  let reason: DropReason = LAG_REASONS.dropOldest;
  if (policy === "conflate" && item.key !== null) {
    dropped = queue.conflate(item.key);
    if (dropped > 0) reason = LAG_REASONS.conflated;
  }
  if (dropped === 0 && queue.dropOldestEvent()) dropped = 1;
  const second = queue.offer(item);
  // With capacity >= 1 there is room now; a queue of capacity 0 can only disconnect.
  if (second.state !== "ok") return second.state === "closed" ? CLOSED : DISCONNECT;
  return { action: "queued", dropped, reason };
}
