/**
 * Helpers the durable histories (Deno KV and Redis) share, private to this folder: where a read
 * starts for a cursor, and building an exact page from the entries a store lists.
 * @module
 */

import type { HeraldEvent } from "../../events/envelope.ts";
import {
  type HistoryPage,
  type HistoryQuery,
  type LostReason,
  placeCursor,
  type StoredEvent,
} from "./history.ts";

/** One event as a durable store lists it: its cursor number, store time and frame. */
export interface RawEntry {
  readonly n: number;
  readonly storedAt: number;
  readonly frame: string;
}

/** The retained window of a tenant in a durable store, for {@linkcode collectPage}. */
export interface Window {
  /** Newest cursor number handed out. */
  readonly last: number;
  /** Numbers up to this one fell out of the count bound. */
  readonly floor: number;
  /** Entries stored before this time fell out of the age bound. */
  readonly freshAfter: number;
}

/**
 * Where a durable store starts reading for `since`, given its newest number `last` and its
 * retention: the number to read after and the retained window, or why the cursor is lost.
 */
export function windowFor(
  since: string | null,
  epoch: string,
  last: number,
  retention: { readonly maxEvents: number; readonly ttlMs: number },
  now: number,
): { readonly after: number; readonly window: Window } | { readonly lost: LostReason } {
  const floor = last - retention.maxEvents;
  const window = { last, floor, freshAfter: now - retention.ttlMs };
  if (since === null) return { after: floor, window };
  const place = placeCursor(since, epoch, floor + 1, last);
  return "lost" in place ? place : { after: place.after, window };
}

/**
 * Builds a page from a store's entries listed oldest first from `after + 1`. With a cursor,
 * the answer is exact or `expired`: every number after it must still be retained, in order.
 */
export async function collectPage(
  entries: AsyncIterable<RawEntry> | Iterable<RawEntry>,
  tenant: string,
  query: HistoryQuery,
  after: number,
  window: Window,
): Promise<HistoryPage> {
  const exact = query.since !== null;
  const events: StoredEvent[] = [];
  let expected = after + 1;
  let truncated = false;
  for await (const { n, storedAt, frame } of entries) {
    const retained = storedAt >= window.freshAfter && n > window.floor;
    if (exact && (!retained || n !== expected)) return { state: "lost", reason: "expired" };
    expected = n + 1;
    // An empty frame is a discarded event (its publish failed): it keeps its place, unread.
    if (!retained || frame === "") continue;
    const event: HeraldEvent = { ...JSON.parse(frame), tenant };
    if (query.match !== undefined && !query.match(event)) continue;
    if (events.length === query.limit) {
      truncated = true;
      break;
    }
    events.push({ event, frame });
  }
  if (exact && !truncated && expected <= window.last) return { state: "lost", reason: "expired" };
  return { state: "ok", events, truncated };
}
