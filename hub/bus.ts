/**
 * The bus seam: how events accepted on one node reach the clients of every other node.
 *
 * Contract every implementation documents against:
 * - `publish` resolves once the bus holds the events for every other node, or rejects with
 *   {@linkcode BusUnavailableError} and then no other node receives any of them (so the
 *   publisher can answer 503 and retry safely: ids make the retry idempotent).
 * - The receiver is never called with the node's own publishes (no echo).
 * - Events from one node arrive at another in the order that node published them.
 * - A gap the bus detects (messages it lost) is reported through `gap`, never hidden.
 * @module
 */

import type { HeraldEvent } from "../events/envelope.ts";

/** Where a bus hands what it receives. */
export interface BusReceiver {
  /** Events published on another node, in that node's publish order. */
  events(events: readonly HeraldEvent[]): void;
  /** The bus lost `missed` messages from node `origin`; affected clients must be told. */
  gap(origin: string, missed: number): void;
}

/** Carries events between nodes. */
export interface Bus {
  /** `memory`, `broadcast` or `redis`: shown in logs and metrics. */
  readonly kind: string;
  /** False while the bus cannot carry publishes (then `/ready` answers 503). */
  readonly ready: boolean;
  start(receiver: BusReceiver): Promise<void>;
  publish(events: readonly HeraldEvent[]): Promise<void>;
  close(): Promise<void>;
}

/** The bus cannot take publishes right now; retry after `retryAfterSeconds`. */
export class BusUnavailableError extends Error {
  readonly retryAfterSeconds: number;

  constructor(message: string, retryAfterSeconds = 1) {
    super(message);
    this.name = "BusUnavailableError";
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * The single-process bus: there are no other nodes, so publishing is a no-op.
 * Limits: one process only; use `broadcast` or `redis` for more.
 */
export class MemoryBus implements Bus {
  readonly kind = "memory";
  readonly ready = true;

  start(_receiver: BusReceiver): Promise<void> {
    return Promise.resolve();
  }

  publish(_events: readonly HeraldEvent[]): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
