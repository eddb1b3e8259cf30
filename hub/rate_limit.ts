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
}
