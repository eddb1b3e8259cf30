/**
 * The `broadcast` bus: `BroadcastChannel` between the isolates of one process
 * (`deno serve --parallel main.ts`), and between Deno Deploy isolates where the platform links
 * them.
 *
 * - Batching: the publishes of one tick travel as one message (up to `maxBatch` events each).
 * - No echo: a `BroadcastChannel` never hands a message back to the object that sent it.
 * - Ordering: Deno carries every message of a process through one FIFO queue, so isolates
 *   receive messages in the order they were sent. `publish` resolves only after Deno has put
 *   the message on that queue (Deno sends on the next timer turn), so an event acknowledged
 *   to a producer is ahead of anything the producer publishes next, on any isolate.
 * - Gaps: Deno drops messages for an isolate more than 256 messages behind, silently. Each
 *   message carries its origin's event counter `n`, so the receiver sees the jump and reports
 *   exactly how many events it missed through `BusReceiver.gap`.
 * - Idempotency across isolates: there is no shared store, so keyed ids travel with the
 *   events and every receiving hub remembers them. A retry is answered with the original
 *   acceptance once the original's message reached the isolate the retry lands on.
 * - Failure: `postMessage` cannot fail while the channel is open; `ready` is true until
 *   `close`.
 *
 * Limits: one process (or one linked Deploy application); use `redis` across machines.
 * @module
 */

import type { HeraldEvent } from "../../events/envelope.ts";
import { getLogger } from "@logtape/logtape";
import { type EarlierByIndex, OriginTracker, TickBatcher } from "./_common.ts";
import {
  type Bus,
  type BusReceiver,
  BusUnavailableError,
  type DirectedMessage,
  type EarlierAcceptances,
} from "./bus.ts";

const log = getLogger(["herald", "bus"]);
const NONE_EARLIER: EarlierByIndex = new Map();

/** One message on the channel. */
interface BroadcastMessage {
  /** Origin: the sending node's id. */
  readonly o: string;
  /** When the origin started listening (ms since the time origin, shared within a process). */
  readonly t: number;
  /** Events the origin sent before this message. */
  readonly n: number;
  readonly e: readonly HeraldEvent[];
  /** Indexes into `e` of the keyed events. */
  readonly k: readonly number[];
}

/** A directed message on the channel: `d` the node it is for, `o` the sender, `m` the message. */
interface BroadcastDirected {
  readonly d: string;
  readonly o: string;
  readonly m: DirectedMessage;
}

/** Options of {@linkcode BroadcastBus}. */
export interface BroadcastBusOptions {
  /** This node's id (unique per isolate). */
  readonly node: string;
  /** Most events in one message. */
  readonly maxBatch: number;
  /** Channel name; isolates on the same name form one bus. */
  readonly channel?: string;
}

/**
 * Fans events out between isolates of one process.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BroadcastBus } from "./broadcast.ts";
 * const channel = `example-${crypto.randomUUID()}`;
 * const a = new BroadcastBus({ node: "a", maxBatch: 100, channel });
 * const b = new BroadcastBus({ node: "b", maxBatch: 100, channel });
 * let deliver!: (ids: string[]) => void;
 * const received = new Promise<string[]>((resolve) => (deliver = resolve));
 * await a.start({ events() {}, gap() {}, message() {} });
 * await b.start({ events: (events) => deliver(events.map((e) => e.id)), gap() {}, message() {} });
 * const event = { tenant: "t", type: "x.y", payload: {}, id: "e1", seq: "ep-1", timestamp: "" };
 * await a.publish([event], new Set());
 * assert.deepEqual(await received, ["e1"]);
 * await a.close();
 * await b.close();
 * ```
 */
export class BroadcastBus implements Bus {
  readonly kind = "broadcast";
  readonly node: string;
  readonly #maxBatch: number;
  readonly #channelName: string;
  readonly #startedAt = performance.timeOrigin + performance.now();
  readonly #batcher: TickBatcher;
  readonly #origins = new OriginTracker();
  #channel: BroadcastChannel | null = null;
  #receiver: BusReceiver | null = null;
  #sent = 0;

  constructor(options: BroadcastBusOptions) {
    this.node = options.node;
    this.#maxBatch = options.maxBatch;
    this.#channelName = options.channel ?? "herald-bus";
    this.#batcher = new TickBatcher((events, keyed) => this.#send(events, keyed), this.#maxBatch);
  }

  get ready(): boolean {
    return this.#channel !== null;
  }

  start(receiver: BusReceiver): Promise<void> {
    const channel = new BroadcastChannel(this.#channelName);
    this.#receiver = receiver;
    channel.onmessage = (event: MessageEvent<BroadcastMessage | BroadcastDirected>) => {
      if ("d" in event.data) {
        const directed = event.data;
        if (directed.d === this.node) receiver.message(directed.o, directed.m);
        return;
      }
      const message = event.data;
      if (message.o === this.node) return;
      const check = this.#origins.accept(
        message.o,
        message.n,
        message.e.length,
        this.#startedAt <= message.t,
      );
      if (check.state === "gap") {
        log.warn("Bus gap: missed {missed} events from {origin}", {
          missed: check.missed,
          origin: message.o,
        });
        receiver.gap(message.o, check.missed);
      }
      const keyed = new Set<string>();
      for (const index of message.k) keyed.add(message.e[index]!.id);
      receiver.events(message.e, keyed);
    };
    this.#channel = channel;
    return Promise.resolve();
  }

  publish(events: readonly HeraldEvent[], keyed: ReadonlySet<string>): Promise<EarlierAcceptances> {
    if (this.#channel === null) {
      return Promise.reject(new BusUnavailableError("The broadcast bus is closed"));
    }
    return this.#batcher.add(events, keyed);
  }

  async #send(events: readonly HeraldEvent[], keyed: readonly boolean[]): Promise<EarlierByIndex> {
    const channel = this.#channel;
    if (channel === null) throw new BusUnavailableError("The broadcast bus is closed");
    for (let start = 0; start < events.length; start += this.#maxBatch) {
      const chunk = events.slice(start, start + this.#maxBatch);
      const k: number[] = [];
      for (let index = 0; index < chunk.length; index++) if (keyed[start + index]) k.push(index);
      const message: BroadcastMessage = {
        o: this.node,
        t: this.#startedAt,
        n: this.#sent,
        e: chunk,
        k,
      };
      channel.postMessage(message);
      this.#sent += chunk.length;
    }
    // Deno hands the message to other isolates on its next timer turn; wait for it.
    await new Promise((resolve) => setTimeout(resolve, 0));
    return NONE_EARLIER;
  }

  /**
   * Posts a directed message on the channel; only node `to` keeps it. A message to this node
   * is handed over directly (a channel never echoes to its sender).
   */
  send(to: string, message: DirectedMessage): Promise<void> {
    const channel = this.#channel;
    if (channel === null) {
      return Promise.reject(new BusUnavailableError("The broadcast bus is closed"));
    }
    if (to === this.node) {
      queueMicrotask(() => this.#receiver?.message(this.node, message));
    } else {
      channel.postMessage({ d: to, o: this.node, m: message } satisfies BroadcastDirected);
    }
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#batcher.cancel(new BusUnavailableError("The broadcast bus is closing"));
    this.#channel?.close();
    this.#channel = null;
    return Promise.resolve();
  }
}
