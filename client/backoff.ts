/**
 * Reconnect delays: exponential backoff with jitter, so that many clients cut off by the same
 * hub restart do not all come back in the same millisecond.
 * @module
 */

/**
 * Bounds of the reconnect delay.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { backoffDelay, type BackoffOptions } from "./backoff.ts";
 * const fast: BackoffOptions = { minMs: 10, maxMs: 40 };
 * assert.ok(backoffDelay(5, fast) <= 40);
 * ```
 */
export interface BackoffOptions {
  /** Ceiling of the first delay in ms (default 250). */
  readonly minMs?: number;
  /** Ceiling of every delay in ms (default 30000). */
  readonly maxMs?: number;
}

/**
 * Default bounds: the first retry within 250 ms, never more than 30 s apart.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { backoffDelay, DEFAULT_BACKOFF } from "./backoff.ts";
 * assert.equal(backoffDelay(0, {}, () => 1), DEFAULT_BACKOFF.minMs);
 * assert.equal(backoffDelay(99, {}, () => 1), DEFAULT_BACKOFF.maxMs);
 * ```
 */
export const DEFAULT_BACKOFF = { minMs: 250, maxMs: 30_000 } as const;

/**
 * The delay before reconnect attempt `attempt` (0 for the first after a close): a ceiling of
 * `minMs * 2^attempt`, capped at `maxMs`, and a delay drawn uniformly from the upper half of it
 * ("equal jitter"). So attempt n waits between half the ceiling and the ceiling.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { backoffDelay } from "./backoff.ts";
 * assert.equal(backoffDelay(0, { minMs: 100, maxMs: 1000 }, () => 0), 50);
 * assert.equal(backoffDelay(0, { minMs: 100, maxMs: 1000 }, () => 1), 100);
 * assert.equal(backoffDelay(3, { minMs: 100, maxMs: 1000 }, () => 1), 800);
 * assert.equal(backoffDelay(20, { minMs: 100, maxMs: 1000 }, () => 1), 1000);
 * ```
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const minMs = options.minMs ?? DEFAULT_BACKOFF.minMs;
  const maxMs = options.maxMs ?? DEFAULT_BACKOFF.maxMs;
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
