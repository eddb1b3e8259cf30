/**
 * A token bucket: `ratePerSecond` sustained, `burst` at once.
 * @module
 */

import type { Clock } from "./clock.ts";

/** Limits how fast one connection may send control messages. */
export class TokenBucket {
  #tokens: number;
  #updatedAt: number;
  readonly #rate: number;
  readonly #burst: number;
  readonly #clock: Clock;

  constructor(ratePerSecond: number, burst: number, clock: Clock) {
    this.#rate = ratePerSecond;
    this.#burst = burst;
    this.#clock = clock;
    this.#tokens = burst;
    this.#updatedAt = clock.now();
  }

  /** Takes one token; false when none is left. */
  take(): boolean {
    const now = this.#clock.now();
    this.#tokens = Math.min(
      this.#burst,
      this.#tokens + ((now - this.#updatedAt) / 1000) * this.#rate,
    );
    this.#updatedAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** True when the bucket is full (an idle key that can be forgotten). */
  get full(): boolean {
    const now = this.#clock.now();
    return this.#tokens + ((now - this.#updatedAt) / 1000) * this.#rate >= this.#burst;
  }

  /** Whole seconds until one token is back (at least 1). */
  get retryAfterSeconds(): number {
    return Math.max(1, Math.ceil((1 - this.#tokens) / this.#rate));
  }
}

/**
 * One token bucket per key (a credential, a client IP). Keys whose bucket refilled are forgotten
 * once more than `maxKeys` are held, so memory stays bounded by the keys active at once.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KeyedBuckets } from "./rate_limit.ts";
 * import { ManualClock } from "./clock.ts";
 * const clock = new ManualClock(0);
 * const buckets = new KeyedBuckets(1, 2, clock);
 * assert.equal(buckets.take("ci"), null);
 * assert.equal(buckets.take("ci"), null);
 * assert.equal(buckets.take("ci"), 1, "over: retry after 1 s");
 * assert.equal(buckets.take("dash"), null, "another key has its own bucket");
 * await clock.advance(1000);
 * assert.equal(buckets.take("ci"), null);
 * ```
 */
export class KeyedBuckets {
  readonly #rate: number;
  readonly #burst: number;
  readonly #clock: Clock;
  readonly #maxKeys: number;
  readonly #buckets = new Map<string, TokenBucket>();

  constructor(ratePerSecond: number, burst: number, clock: Clock, maxKeys = 100_000) {
    this.#rate = ratePerSecond;
    this.#burst = burst;
    this.#clock = clock;
    this.#maxKeys = maxKeys;
  }

  /** Takes one token for `key`: null when allowed, else the seconds to wait. */
  take(key: string): number | null {
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      if (this.#buckets.size >= this.#maxKeys) this.#forgetIdle();
      bucket = new TokenBucket(this.#rate, this.#burst, this.#clock);
      this.#buckets.set(key, bucket);
    }
    return bucket.take() ? null : bucket.retryAfterSeconds;
  }

  #forgetIdle(): void {
    for (const [key, bucket] of this.#buckets) if (bucket.full) this.#buckets.delete(key);
    // Every key active at once: drop the oldest rather than grow.
    if (this.#buckets.size >= this.#maxKeys) {
      const oldest = this.#buckets.keys().next();
      if (!oldest.done) this.#buckets.delete(oldest.value);
    }
  }
}
