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
 *
 * Directed messages (what the agents feature routes between nodes: a command to the node an
 * agent is connected to, its answer back) have a contract of their own:
 * - `send(to, message)` carries a JSON object to the one node whose id is `to` (a node may send
 *   to itself). It resolves once the bus took the message, or rejects with
 *   {@linkcode BusUnavailableError} when it cannot carry messages now.
 * - At most once: a message to a node that is not running, or that stops before reading it, is
 *   lost without an error; the sender times out and decides (retry, answer "agent offline").
 * - Messages from one node to another arrive in the order they were sent; there is no order
 *   between directed messages and published events.
 * - The receiver gets `message(from, message)` with the sender's node id.
 * @module
 */

import type { HeraldEvent } from "../../events/envelope.ts";
import type { JsonObject } from "../../events/json.ts";
import type { Acceptance } from "../idempotency.ts";

/** Earlier acceptances by event id, for producer ids another node accepted first. */
export type EarlierAcceptances = ReadonlyMap<string, Acceptance>;

/** A message addressed to one node: any JSON object. */
export type DirectedMessage = JsonObject;

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
  /** A directed message node `from` sent to this node. */
  message(from: string, message: DirectedMessage): void;
}

/** Carries events between nodes. */
export interface Bus {
  /** `memory`, `broadcast` or `redis`: shown in logs and metrics. */
  readonly kind: string;
  /** This node's id: the origin of its publishes and the address directed messages go to. */
  readonly node: string;
  /** False while the bus cannot carry publishes (then `/ready` answers 503). */
  readonly ready: boolean;
  /**
   * How far behind the bus this node reads (ms): the age of the newest message of the last
   * batch received, 0 once caught up. Absent on buses that cannot tell (memory, broadcast).
   */
  readonly lagMs?: number;
  start(receiver: BusReceiver): Promise<void>;
  /**
   * Carries `events` to every other node; `keyed` holds the ids among them that producers
   * supplied. Resolves with the earlier acceptances of keyed ids another node took first.
   */
  publish(events: readonly HeraldEvent[], keyed: ReadonlySet<string>): Promise<EarlierAcceptances>;
  /** Carries `message` to node `to` only, at most once (see the module's contract). */
  send(to: string, message: DirectedMessage): Promise<void>;
  close(): Promise<void>;
}

/** The answer of a bus that found no earlier acceptance. */
export const NO_EARLIER: EarlierAcceptances = new Map();

/**
 * The bus cannot take publishes right now; retry after `retryAfterSeconds`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BusUnavailableError } from "./bus.ts";
 * const error = new BusUnavailableError("The event bus (Redis) is unreachable", 3);
 * assert.equal(error.retryAfterSeconds, 3);
 * assert.equal(error.name, "BusUnavailableError");
 * ```
 */
export class BusUnavailableError extends Error {
  readonly retryAfterSeconds: number;

  constructor(message: string, retryAfterSeconds = 1) {
    super(message);
    this.name = "BusUnavailableError";
    this.retryAfterSeconds = retryAfterSeconds;
  }
}
