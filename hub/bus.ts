/**
 * The bus seam: how events accepted on one node reach the clients of every other node.
 *
 * Contract every implementation documents against:
 * - The bus carries finished {@linkcode HeraldEvent}s: the hub assigns `id`, `seq` and
 *   `timestamp` before publishing; the bus never changes them.
 * - `publish` resolves once the bus holds the events for every other node, or rejects with
 *   {@linkcode BusUnavailableError} and then no other node receives any of them (so the
 *   publisher can answer 503 and retry safely: ids make the retry idempotent).
 * - Idempotency across nodes: `keyed` names the events whose id the producer supplied. If
 *   another node already accepted one of those ids (same tenant) within the idempotency
 *   window, `publish` does not carry that event and resolves with the earlier acceptance in
 *   its result; the caller answers with it and does not deliver the event. A bus without a
 *   shared store resolves with an empty map and relies on receivers remembering keyed ids
 *   (see `BusReceiver.events`).
 * - The receiver is never called with the node's own publishes (no echo).
 * - Events from one node arrive at another in the order that node published them.
 * - A gap the bus detects (messages it lost) is reported through `gap`, never hidden.
 * - `publish` may be called concurrently; calls in one tick may be carried as one message.
 * @module
 */

import type { HeraldEvent } from "../events/envelope.ts";
import type { Acceptance } from "./idempotency.ts";

/** Earlier acceptances by event id, for producer ids another node accepted first. */
export type EarlierAcceptances = ReadonlyMap<string, Acceptance>;

/** Where a bus hands what it receives. */
export interface BusReceiver {
  /**
   * Events published on another node, in that node's publish order. `keyed` names those whose
   * id the producer supplied, so the receiving hub remembers them for idempotent retries.
   */
  events(events: readonly HeraldEvent[], keyed: ReadonlySet<string>): void;
  /**
   * The bus lost `missed` messages from node `origin`; affected clients must be told.
   * `historyLost`: they belong to a history epoch that ended since (Redis restarted), so a
   * shared history cannot fill them in either.
   */
  gap(origin: string, missed: number, historyLost?: boolean): void;
}

/** Carries events between nodes. */
export interface Bus {
  /** `memory`, `broadcast` or `redis`: shown in logs and metrics. */
  readonly kind: string;
  /** False while the bus cannot carry publishes (then `/ready` answers 503). */
  readonly ready: boolean;
  start(receiver: BusReceiver): Promise<void>;
  /**
   * Carries `events` to every other node; `keyed` holds the ids among them that producers
   * supplied. Resolves with the earlier acceptances of keyed ids another node took first.
   */
  publish(events: readonly HeraldEvent[], keyed: ReadonlySet<string>): Promise<EarlierAcceptances>;
  close(): Promise<void>;
}

/** The answer of a bus that found no earlier acceptance. */
export const NO_EARLIER: EarlierAcceptances = new Map();

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

  publish(
    _events: readonly HeraldEvent[],
    _keyed: ReadonlySet<string>,
  ): Promise<EarlierAcceptances> {
    return Promise.resolve(NO_EARLIER);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
