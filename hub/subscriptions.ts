/**
 * The subscription index of one tenant: finds the subscriptions an event matches with lookups
 * whose number grows with the depth of the event type, not with the number of connections.
 *
 * Subscriptions are bucketed by appId filter (or none), then by exact type or by prefix.
 * An event `a.b.c` for app `web` looks in the `web` and any-app buckets for the exact type
 * `a.b.c` and the prefixes `""` (`*`), `"a."` and `"a.b."`. The namespace filter is checked
 * on each candidate, so its cost is per match.
 * @module
 */

import { prefixesOf, type TopicPattern } from "../events/topic.ts";

/** A client's interest: a topic pattern and optional exact-match filters. */
export interface Subscription<C> {
  readonly owner: C;
  readonly topic: TopicPattern;
  readonly appId: string | null;
  readonly namespace: string | null;
}

type Bucket<C> = Set<Subscription<C>>;

interface AppBuckets<C> {
  readonly exact: Map<string, Bucket<C>>;
  readonly prefix: Map<string, Bucket<C>>;
}

const ANY_APP = "\u0000any";
/** Event types seen recently, with their prefixes; bounded so hostile types cannot grow it. */
const PREFIX_CACHE_LIMIT = 4096;

/** Subscriptions of one tenant, indexed for routing. */
export class SubscriptionIndex<C> {
  readonly #byApp = new Map<string, AppBuckets<C>>();
  readonly #prefixCache = new Map<string, string[]>();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  add(subscription: Subscription<C>): void {
    const appKey = subscription.appId ?? ANY_APP;
    let buckets = this.#byApp.get(appKey);
    if (buckets === undefined) {
      buckets = { exact: new Map(), prefix: new Map() };
      this.#byApp.set(appKey, buckets);
    }
    const { map, key } = this.#slot(buckets, subscription.topic);
    let bucket = map.get(key);
    if (bucket === undefined) {
      bucket = new Set();
      map.set(key, bucket);
    }
    if (!bucket.has(subscription)) {
      bucket.add(subscription);
      this.#size++;
    }
  }

  remove(subscription: Subscription<C>): void {
    const appKey = subscription.appId ?? ANY_APP;
    const buckets = this.#byApp.get(appKey);
    if (buckets === undefined) return;
    const { map, key } = this.#slot(buckets, subscription.topic);
    const bucket = map.get(key);
    if (bucket === undefined || !bucket.delete(subscription)) return;
    this.#size--;
    if (bucket.size === 0) map.delete(key);
    if (buckets.exact.size === 0 && buckets.prefix.size === 0) this.#byApp.delete(appKey);
  }

  /**
   * Calls `visit` for every subscription matching the event. A client with several matching
   * subscriptions is visited once per subscription; the caller dedupes per event.
   */
  match(
    type: string,
    appId: string | undefined,
    namespace: string | undefined,
    visit: (subscription: Subscription<C>) => void,
  ): void {
    const prefixes = this.#prefixes(type);
    if (appId !== undefined) {
      this.#matchIn(this.#byApp.get(appId), type, prefixes, namespace, visit);
    }
    this.#matchIn(this.#byApp.get(ANY_APP), type, prefixes, namespace, visit);
  }

  #matchIn(
    buckets: AppBuckets<C> | undefined,
    type: string,
    prefixes: string[],
    namespace: string | undefined,
    visit: (subscription: Subscription<C>) => void,
  ): void {
    if (buckets === undefined) return;
    visitBucket(buckets.exact.get(type), namespace, visit);
    for (const prefix of prefixes) visitBucket(buckets.prefix.get(prefix), namespace, visit);
  }

  #slot(buckets: AppBuckets<C>, topic: TopicPattern): { map: Map<string, Bucket<C>>; key: string } {
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

function visitBucket<C>(
  bucket: Bucket<C> | undefined,
  namespace: string | undefined,
  visit: (subscription: Subscription<C>) => void,
): void {
  if (bucket === undefined) return;
  for (const subscription of bucket) {
    if (subscription.namespace === null || subscription.namespace === namespace) {
      visit(subscription);
    }
  }
}
