/**
 * The subscription index of one tenant: finds the subscriptions an event matches with lookups
 * whose number grows with the depth of the event type, not with the number of connections.
 *
 * Subscriptions are bucketed by their most selective id filter (`sessionId`, else `userId`,
 * else `appId`, else none), then by exact type or by prefix. An event `a.b.c` for app `web`
 * and user `u1` looks in the `web`, `u1` and unfiltered buckets (and its session's) for the
 * exact type `a.b.c` and the prefixes `""` (`*`), `"a."` and `"a.b."`. The other filters are
 * checked on each candidate, whose bucket key already matched, so their cost is per match.
 * @module
 */

import type { SubscriptionFilter } from "../events/messages.ts";
import { prefixesOf, type TopicPattern } from "../events/topic.ts";

/**
 * Exact-match filters, null where absent. One object is shared by every subscription a
 * subscribe made (and {@linkcode NO_FILTERS} by every unfiltered one), so a connection with many
 * topics holds its filters once, not per topic.
 */
export interface SubscriptionFilters {
  readonly appId: string | null;
  readonly namespace: string | null;
  readonly userId: string | null;
  readonly sessionId: string | null;
}

/** The filters of a subscription that has none. */
export const NO_FILTERS: SubscriptionFilters = Object.freeze({
  appId: null,
  namespace: null,
  userId: null,
  sessionId: null,
});

/**
 * The filters for `filter`: {@linkcode NO_FILTERS} when it sets none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { filtersOf, NO_FILTERS } from "./subscriptions.ts";
 * assert.equal(filtersOf({}), NO_FILTERS);
 * assert.equal(filtersOf({ appId: "web" }).appId, "web");
 * ```
 */
export function filtersOf(filter: SubscriptionFilter): SubscriptionFilters {
  const { appId, namespace, userId, sessionId } = filter;
  if (
    appId === undefined && namespace === undefined && userId === undefined &&
    sessionId === undefined
  ) return NO_FILTERS;
  return {
    appId: appId ?? null,
    namespace: namespace ?? null,
    userId: userId ?? null,
    sessionId: sessionId ?? null,
  };
}

/** A client's interest: a topic pattern and its exact-match filters. */
export interface Subscription<C> {
  readonly owner: C;
  readonly topic: TopicPattern;
  readonly filters: SubscriptionFilters;
}

/** What routing reads of an event: its type and the fields subscriptions filter on. */
export interface Routed extends SubscriptionFilter {
  readonly type: string;
}

interface Buckets<S> {
  readonly exact: Map<string, Set<S>>;
  readonly prefix: Map<string, Set<S>>;
}

const UNFILTERED = "\u0000any";
/** Event types seen recently, with their prefixes; bounded so hostile types cannot grow it. */
const PREFIX_CACHE_LIMIT = 4096;

/** The bucket key of a subscription: its most selective id filter. */
function keyOf({ filters }: Subscription<unknown>): string {
  if (filters.sessionId !== null) return `s\u0000${filters.sessionId}`;
  if (filters.userId !== null) return `u\u0000${filters.userId}`;
  if (filters.appId !== null) return `a\u0000${filters.appId}`;
  return UNFILTERED;
}

/** Subscriptions of one tenant, indexed for routing. */
export class SubscriptionIndex<C, S extends Subscription<C> = Subscription<C>> {
  readonly #byKey = new Map<string, Buckets<S>>();
  readonly #prefixCache = new Map<string, string[]>();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  add(subscription: S): void {
    const key = keyOf(subscription);
    let buckets = this.#byKey.get(key);
    if (buckets === undefined) {
      buckets = { exact: new Map(), prefix: new Map() };
      this.#byKey.set(key, buckets);
    }
    const slot = this.#slot(buckets, subscription.topic);
    let bucket = slot.map.get(slot.key);
    if (bucket === undefined) {
      bucket = new Set();
      slot.map.set(slot.key, bucket);
    }
    if (!bucket.has(subscription)) {
      bucket.add(subscription);
      this.#size++;
    }
  }

  remove(subscription: S): void {
    const key = keyOf(subscription);
    const buckets = this.#byKey.get(key);
    if (buckets === undefined) return;
    const slot = this.#slot(buckets, subscription.topic);
    const bucket = slot.map.get(slot.key);
    if (bucket === undefined || !bucket.delete(subscription)) return;
    this.#size--;
    if (bucket.size === 0) slot.map.delete(slot.key);
    if (buckets.exact.size === 0 && buckets.prefix.size === 0) this.#byKey.delete(key);
  }

  /**
   * Calls `visit` for every subscription matching the event. A client with several matching
   * subscriptions is visited once per subscription; the caller dedupes per event.
   */
  match(event: Routed, visit: (subscription: S) => void): void {
    const prefixes = this.#prefixes(event.type);
    if (event.sessionId !== undefined) {
      this.#matchIn(this.#byKey.get(`s\u0000${event.sessionId}`), event, prefixes, visit);
    }
    if (event.userId !== undefined) {
      this.#matchIn(this.#byKey.get(`u\u0000${event.userId}`), event, prefixes, visit);
    }
    if (event.appId !== undefined) {
      this.#matchIn(this.#byKey.get(`a\u0000${event.appId}`), event, prefixes, visit);
    }
    this.#matchIn(this.#byKey.get(UNFILTERED), event, prefixes, visit);
  }

  #matchIn(
    buckets: Buckets<S> | undefined,
    event: Routed,
    prefixes: string[],
    visit: (subscription: S) => void,
  ): void {
    if (buckets === undefined) return;
    visitBucket(buckets.exact.get(event.type), event, visit);
    for (const prefix of prefixes) visitBucket(buckets.prefix.get(prefix), event, visit);
  }

  #slot(buckets: Buckets<S>, topic: TopicPattern): { map: Map<string, Set<S>>; key: string } {
    return topic.kind === "exact"
      ? { map: buckets.exact, key: topic.type }
      : { map: buckets.prefix, key: topic.prefix };
  }

  #prefixes(type: string): string[] {
    let prefixes = this.#prefixCache.get(type);
    if (prefixes === undefined) {
      prefixes = prefixesOf(type);
      if (this.#prefixCache.size >= PREFIX_CACHE_LIMIT) this.#prefixCache.clear();
      this.#prefixCache.set(type, prefixes);
    }
    return prefixes;
  }
}

function visitBucket<S extends Subscription<unknown>>(
  bucket: Set<S> | undefined,
  event: Routed,
  visit: (subscription: S) => void,
): void {
  if (bucket === undefined) return;
  for (const subscription of bucket) {
    const filters = subscription.filters;
    if (
      filters === NO_FILTERS || (
        (filters.namespace === null || filters.namespace === event.namespace) &&
        (filters.appId === null || filters.appId === event.appId) &&
        (filters.userId === null || filters.userId === event.userId) &&
        (filters.sessionId === null || filters.sessionId === event.sessionId)
      )
    ) visit(subscription);
  }
}
