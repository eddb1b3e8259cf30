/**
 * The single-process bus.
 * @module
 */

import type { HeraldEvent } from "../../events/envelope.ts";
import {
  type Bus,
  type BusReceiver,
  type DirectedMessage,
  type EarlierAcceptances,
  NO_EARLIER,
} from "./bus.ts";

/**
 * The single-process bus: there are no other nodes, so publishing is a no-op and a directed
 * message reaches this node only (one to any other id is lost, as the contract allows).
 * Limits: one process only; use `broadcast` or `redis` for more.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryBus } from "./memory.ts";
 * const bus = new MemoryBus("n1");
 * const got: unknown[] = [];
 * await bus.start({ events() {}, gap() {}, message: (from, message) => got.push([from, message]) });
 * await bus.send("n1", { command: "restart" });
 * await bus.send("elsewhere", { command: "lost" });
 * assert.deepEqual(got, [["n1", { command: "restart" }]]);
 * ```
 */
export class MemoryBus implements Bus {
  readonly kind = "memory";
  readonly ready = true;
  readonly node: string;
  #receiver: BusReceiver | null = null;

  constructor(node: string = crypto.randomUUID()) {
    this.node = node;
  }

  start(receiver: BusReceiver): Promise<void> {
    this.#receiver = receiver;
    return Promise.resolve();
  }

  publish(
    _events: readonly HeraldEvent[],
    _keyed: ReadonlySet<string>,
  ): Promise<EarlierAcceptances> {
    return Promise.resolve(NO_EARLIER);
  }

  send(to: string, message: DirectedMessage): Promise<void> {
    if (to === this.node) this.#receiver?.message(this.node, message);
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#receiver = null;
    return Promise.resolve();
  }
}
