/**
 * One connected client: its subscriptions, its bounded queue and the pump that drains the
 * queue into its transport without ever letting the transport's own buffer grow past the
 * high-water mark.
 * @module
 */

import { DISCONNECT, type Disconnect, LAG_REASONS } from "../events/codes.ts";
import type { Dialect } from "../events/dialects.ts";
import { encodeLagged } from "../events/messages.ts";
import { getLogger } from "@logtape/logtape";
import type { Clock } from "./clock.ts";
import type { Metrics } from "./metrics.ts";
import type { Principal } from "./principal.ts";
import { type DropReason, enqueue, type OverflowPolicy } from "./overflow.ts";
import { type Delivery, DeliveryQueue, type Taken } from "./queue.ts";
import { ResumeSeam, SKIPPED } from "./resume.ts";
import type { Subscription } from "./subscriptions.ts";
import type { Transport } from "./transport.ts";

/** Limits and policy that apply to every client. */
export interface ClientLimits {
  /** Events a client's queue holds before the overflow policy applies. */
  readonly bufferEvents: number;
  /** The pump does not write while the transport buffers more than this many bytes. */
  readonly highWaterBytes: number;
  readonly overflow: OverflowPolicy;
  /** A client whose transport buffer has not shrunk for this long is closed as a slow consumer. */
  readonly stallTimeoutMs: number;
  /** How often a blocked pump looks at the transport buffer again. */
  readonly drainPollMs: number;
}

const log = getLogger(["herald", "client"]);

/** A subscription of a client: what it matches, the dialect its events are framed in, and the
 * topic name it was subscribed (and is unsubscribed) by. */
export interface ClientSubscription extends Subscription<Client> {
  readonly dialect: Dialect;
  readonly name: string;
  /** A dorgu subscription's namespace filter, on dorgu's namespace of the event. */
  readonly dorguNamespace: string | null;
}

let nextClientId = 1;

/** A client of the hub. */
export class Client {
  readonly id: string;
  /** Replaced when the connection presents a new credential (`refresh`), same tenant only. */
  principal: Principal;
  readonly transportName: string;
  /** Keyed by topic, dialect, name and filters, so the same subscription twice is one. */
  readonly subscriptions = new Map<string, ClientSubscription>();
  /**
   * Number of the last event routed to this client in each dialect, to deliver each event once
   * per dialect the client's matching subscriptions ask for.
   */
  readonly lastEventNo: Record<Dialect, number> = { herald: 0, dorgu: 0, streamspace: 0 };
  /** Resume's side of this connection: its implicit `*`, held live events, what it has. */
  readonly seam: ResumeSeam;
  readonly queue: DeliveryQueue;
  readonly #transport: Transport;
  readonly #limits: ClientLimits;
  readonly #clock: Clock;
  readonly #metrics: Metrics;
  readonly #onClose: (client: Client) => void;
  /**
   * Events lost outside the queue since the last notice: lost on the bus (`noteLost`) or
   * dropped from the held queue during a replay. Announced before the next frame written.
   */
  #lostOutsideQueue = 0;
  #dropReason: DropReason = LAG_REASONS.dropOldest;
  #closed = false;
  #pumpHolding = false;
  /** A pump runs only while something is queued: an idle client holds no pending promise. */
  #pumping = false;
  /**
   * An upper bound of the bytes the transport buffers: its last reading plus an overestimate of
   * every frame written since. Reading the transport is a call into the runtime, so the hot path
   * reads it only when this bound passes the high-water mark (see `#belowHighWater`).
   */
  #bufferedBound = 0;

  constructor(
    transport: Transport,
    principal: Principal,
    transportName: string,
    deps: {
      limits: ClientLimits;
      clock: Clock;
      metrics: Metrics;
      onClose: (client: Client) => void;
    },
  ) {
    this.id = `c${nextClientId++}`;
    this.#transport = transport;
    this.principal = principal;
    this.transportName = transportName;
    this.#limits = deps.limits;
    this.#clock = deps.clock;
    this.#metrics = deps.metrics;
    this.#onClose = deps.onClose;
    this.queue = new DeliveryQueue(deps.limits.bufferEvents);
    // Held live events are bounded like the queue and under the same overflow policy.
    this.seam = new ResumeSeam(deps.limits.bufferEvents);
  }

  get tenant(): string {
    return this.principal.tenant;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes the transport holds unsent. */
  get bufferedAmount(): number {
    return this.#transport.bufferedAmount;
  }

  /**
   * Sends an event frame, or queues it under the overflow policy. Writes through while the
   * client keeps up (nothing queued, socket under the high-water mark), so a burst larger than
   * the queue reaches a healthy client whole; the queue holds only the backlog of a slow one.
   */
  deliver(delivery: Delivery): void {
    if (this.#canWriteThrough()) {
      this.#write(delivery, this.#takeLost());
      return;
    }
    if (this.#offer(this.queue, delivery)) this.#startPump();
  }

  /**
   * Offers an event to `queue` (the client's own, or the held one) under the overflow policy.
   * False when it was not queued: the client was closed, as a slow consumer or before.
   */
  #offer(queue: DeliveryQueue, delivery: Delivery): boolean {
    const outcome = enqueue(queue, delivery, this.#limits.overflow);
    if (outcome.action === "queued") {
      if (outcome.dropped > 0) {
        this.#dropReason = outcome.reason ?? LAG_REASONS.dropOldest;
        this.#metrics.eventsDropped.incLabel(this.#dropReason, outcome.dropped);
      }
      return true;
    }
    if (outcome.action === "disconnect") {
      this.#metrics.slowConsumerDisconnects.incLabel("queue_full");
      this.close(DISCONNECT.slowConsumer);
    }
    return false;
  }

  /** Writes one frame, preceded by a `lagged` notice when `droppedBefore` events were lost. */
  #write(item: Delivery, droppedBefore: number): void {
    const transport = this.#transport;
    try {
      if (droppedBefore > 0) {
        const notice = encodeLagged(droppedBefore, this.#dropReason);
        transport.send({ frame: notice, type: "lagged" });
        this.#bufferedBound += frameBytesBound(notice);
      }
      transport.send(item);
      this.#bufferedBound += frameBytesBound(item.frame);
    } catch {
      // The socket closed under us; its close event releases the client.
      this.transportClosed();
      return;
    }
    if (item.key !== null) this.#metrics.eventsDelivered.value++;
  }

  /** Takes the count of events lost outside the queue since the last notice. */
  #takeLost(): number {
    const lost = this.#lostOutsideQueue;
    this.#lostOutsideQueue = 0;
    return lost;
  }

  /**
   * A live event for this client: queued, held back while a replay runs (bounded like the
   * queue, under the same overflow policy), or skipped when a replay carried it.
   */
  route(delivery: Delivery & { readonly seq: string }): void {
    switch (this.seam.admit(delivery.seq)) {
      case "deliver":
        this.deliver(delivery);
        return;
      case "hold":
        this.#offer(this.seam.held!, delivery);
        return;
      case "skip":
        return;
    }
  }

  /** Delivers the live events a replay held back, with the drops announced where they were. */
  deliverReleased(released: readonly Taken[]): void {
    for (const { delivery, droppedBefore } of released) {
      this.#lostOutsideQueue += droppedBefore;
      if (delivery !== SKIPPED) this.deliver(delivery);
    }
  }

  /**
   * Queues a replayed event, waiting for room first so a long replay is paced by the client
   * instead of overflowing its queue. Resolves false when the client closed meanwhile.
   */
  async deliverPaced(delivery: Delivery): Promise<boolean> {
    if (!this.queue.hasRoom) await this.queue.room();
    if (this.#closed) return false;
    this.deliver(delivery);
    return true;
  }

  /**
   * Tells the client that `missed` events may never reach it (the bus lost messages). Under
   * the `disconnect` policy it is closed so that it resumes; otherwise it gets a `lagged`
   * notice before its next event.
   */
  noteLost(missed: number): void {
    if (this.#limits.overflow === "disconnect") {
      this.close(DISCONNECT.eventsLost);
      return;
    }
    this.#lostOutsideQueue += missed;
    this.#dropReason = LAG_REASONS.busGap;
  }

  /**
   * Sends a control reply of message type `type`, or queues it behind the backlog so it keeps
   * its place in line. A reply takes the path of an event: it counts against the queue bound
   * and waits for the socket's high-water mark. A reply is never dropped: when the queue is
   * full, the overflow policy drops an event for it (`drop-oldest`, `conflate`) or, when there
   * is none to drop or under `disconnect`, the client is closed as a slow consumer (4008).
   */
  reply(frame: string, type = "response"): void {
    const delivery: Delivery = { frame, type, key: null };
    if (this.#canWriteThrough()) this.#write(delivery, this.#takeLost());
    else if (this.#offer(this.queue, delivery)) this.#startPump();
  }

  /** Nothing is queued or held by the pump, and the socket is under the high-water mark. */
  #canWriteThrough(): boolean {
    return !this.#closed && !this.#pumpHolding && this.queue.depth === 0 &&
      this.#belowHighWater();
  }

  /**
   * True when the transport buffers at most the high-water mark. Trusts the upper bound while it
   * is under the mark; past it, reads the transport and starts the bound again from the reading.
   */
  #belowHighWater(): boolean {
    const highWater = this.#limits.highWaterBytes;
    if (this.#bufferedBound <= highWater) return true;
    this.#bufferedBound = this.#transport.bufferedAmount;
    return this.#bufferedBound <= highWater;
  }

  /** Closes the transport and releases everything the client holds. Idempotent. */
  close(disconnect: Disconnect): void {
    if (this.#closed) return;
    this.#closed = true;
    this.queue.close();
    try {
      this.#transport.close(disconnect.code, disconnect.reason);
    } catch {
      // Already closed by the peer.
    }
    this.#onClose(this);
  }

  /** Marks the client closed after its transport closed on its own (peer went away). */
  transportClosed(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.queue.close();
    this.#onClose(this);
  }

  #startPump(): void {
    if (this.#pumping || this.#closed) return;
    this.#pumping = true;
    this.#pump().catch((error: unknown) => {
      log.error("A client's pump failed: {error}", { client: this.id, error });
      this.close(DISCONNECT.internal);
    });
  }

  /** Drains the queue into the transport, then ends; `#startPump` runs it again when needed. */
  async #pump(): Promise<void> {
    try {
      for await (const { delivery, droppedBefore } of this.queue) {
        // Holding an item taken from the queue: write-through must wait behind it.
        this.#pumpHolding = true;
        if (!this.#belowHighWater() && !(await this.#waitForDrain())) return;
        this.#pumpHolding = false;
        if (this.#closed) return;
        this.#write(delivery, droppedBefore + this.#takeLost());
        if (this.queue.depth === 0) return;
      }
    } finally {
      // Synchronous with the exit: an item queued from now on starts a new pump.
      this.#pumping = false;
    }
  }

  /**
   * Waits until the transport buffer is back under the high-water mark. Returns false when the
   * client was closed instead: by someone else, or here because the buffer has not shrunk for
   * the stall timeout.
   */
  async #waitForDrain(): Promise<boolean> {
    const transport = this.#transport;
    let lowest = transport.bufferedAmount;
    let progressAt = this.#clock.now();
    while (!this.#closed) {
      await this.#clock.sleep(this.#limits.drainPollMs);
      const buffered = transport.bufferedAmount;
      if (buffered <= this.#limits.highWaterBytes) {
        this.#bufferedBound = buffered;
        return !this.#closed;
      }
      if (buffered < lowest) {
        lowest = buffered;
        progressAt = this.#clock.now();
      } else if (this.#clock.now() - progressAt >= this.#limits.stallTimeoutMs) {
        this.#metrics.slowConsumerDisconnects.incLabel("stalled");
        this.close(DISCONNECT.slowConsumer);
      }
    }
    return false;
  }
}

/**
 * At least the bytes a transport buffers for `frame`: UTF-8 takes at most 3 bytes per UTF-16
 * code unit, and a transport's own envelope (WebSocket header, SSE `data:` lines) is counted
 * generously in the constant.
 */
function frameBytesBound(frame: string): number {
  return frame.length * 3 + 64;
}
