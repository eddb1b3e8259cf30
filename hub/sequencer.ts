/**
 * Assigns `seq` cursors. A cursor is `<epoch>-<n>`: the epoch names this sequence's lifetime
 * (a restart of an in-memory hub starts a new one, so a client holding an old cursor can be
 * told it cannot resume), `n` counts up per tenant. Clients treat the string as opaque.
 * @module
 */

/** Hands out increasing cursors per tenant. */
export class Sequencer {
  readonly epoch: string;
  readonly #counters = new Map<string, number>();

  constructor(epoch: string = Date.now().toString(36)) {
    this.epoch = epoch;
  }

  next(tenant: string): string {
    const n = (this.#counters.get(tenant) ?? 0) + 1;
    this.#counters.set(tenant, n);
    return `${this.epoch}-${n}`;
  }
}
