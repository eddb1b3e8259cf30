/**
 * Remembers producer-supplied event ids for a while, so a retried publish is answered with
 * the original id and seq instead of being delivered twice.
 * @module
 */

import type { Clock } from "./clock.ts";

/** What a producer gets back for an accepted event. */
export interface Acceptance {
  readonly id: string;
  readonly seq: string;
}

interface Entry {
  readonly acceptance: Acceptance;
  readonly expiresAt: number;
}

/** Ids accepted within the last `ttlMs`, at most `maxKeys` of them (oldest forgotten first). */
export class IdempotencyWindow {
  readonly #entries = new Map<string, Entry>();
  readonly #ttlMs: number;
  readonly #maxKeys: number;
  readonly #clock: Clock;

  constructor(options: { ttlMs: number; maxKeys: number; clock: Clock }) {
    this.#ttlMs = options.ttlMs;
    this.#maxKeys = options.maxKeys;
    this.#clock = options.clock;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The earlier acceptance of this tenant's id, if still remembered. */
  get(tenant: string, id: string): Acceptance | undefined {
    const entry = this.#entries.get(`${tenant}\u0000${id}`);
    if (entry === undefined || entry.expiresAt <= this.#clock.now()) return undefined;
    return entry.acceptance;
  }

  remember(tenant: string, acceptance: Acceptance): void {
    const now = this.#clock.now();
    this.#evict(now);
    const { id, seq } = acceptance;
    this.#entries.set(`${tenant}\u0000${id}`, {
      acceptance: { id, seq },
      expiresAt: now + this.#ttlMs,
    });
  }

  #evict(now: number): void {
    // Insertion order is expiry order, so expired entries are at the front.
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt > now && this.#entries.size < this.#maxKeys) break;
      this.#entries.delete(key);
    }
  }
}
