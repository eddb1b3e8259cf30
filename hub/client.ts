/**
 * One connected client: its subscriptions, its bounded queue and the pump that drains the
 * queue into its transport without ever letting the transport's own buffer grow past the
 * high-water mark.
 * @module
 */

import { DISCONNECT, type Disconnect } from "../events/codes.ts";
import { encodeLagged } from "../events/messages.ts";
import type { Clock } from "./clock.ts";
import { compareCursors } from "./history.ts";
import type { Metrics } from "./metrics.ts";
import { type DropReason, enqueue, type OverflowPolicy } from "./overflow.ts";
import { type Delivery, DeliveryQueue } from "./queue.ts";
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

/** Who a client is; filled in by the layer that authenticated it. */
export interface Principal {
  readonly tenant: string;
  /** May publish over this connection. */
  readonly canPublish: boolean;
}

let nextClientId = 1;

/** A client of the hub. */
export class Client {
  readonly id: string;
  readonly principal: Principal;
  readonly transportName: string;
  /** Keyed by topic, appId and namespace, so the same subscription twice is one. */
  readonly subscriptions = new Map<string, Subscription<Client>>();
  /** True while the client holds only the `*` subscription it got for connecting without a topic. */
  implicitAll = false;
  /** Number of the last event routed to this client, to deliver each event once. */
  lastEventNo = 0;
  /** Cursors of the first and last live events routed under the implicit `*` (null before any). */
  firstSeq: string | null = null;
  lastSeq: string | null = null;
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
  /**
   * Live events held back while a replay runs (see `hold`); null when none runs. Bounded like
   * the client's queue and under the same overflow policy.
   */
  #held: DeliveryQueue | null = null;
  #holds = 0;
  /** The client has every event up to this cursor (resumed from or replayed): skip those. */
  #replayedUpTo: string | null = null;
  #dropReason: DropReason = "drop_oldest";
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
        this.#dropReason = outcome.reason ?? "drop_oldest";
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
        transport.send(notice);
        this.#bufferedBound += frameBytesBound(notice);
      }
      transport.send(item.frame);
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
   * A live event for this client: queued, or held back while a replay runs. The hold is bounded
   * like the queue: past `bufferEvents` held events the overflow policy applies to it too.
   */
  route(delivery: Delivery & { readonly seq: string }): void {
    const seq = delivery.seq;
    if (this.#replayedUpTo !== null) {
      // Routing follows cursor order, so a live event at or before the last replayed cursor was
      // in the replay's read (it may have waited in the cursor order while the history was read).
      const order = compareCursors(seq, this.#replayedUpTo);
      if (order !== null && order <= 0) return;
      this.#replayedUpTo = null;
    }
    if (this.implicitAll) {
      // Read only when this connection resumes while it still holds the implicit `*`.
      this.firstSeq ??= seq;
      this.lastSeq = seq;
    }
    if (this.#held === null) this.deliver(delivery);
    else this.#offer(this.#held, delivery);
  }

  /** Starts holding live events back until the matching `release` (replays nest). */
  hold(): void {
    this.#holds++;
    this.#held ??= new DeliveryQueue(this.#limits.bufferEvents);
  }

  /**
   * Ends one hold. `since` is the cursor the client resumed from, when the history could place
   * it (the client has everything up to it), and `replayed` the cursors the replay delivered: neither is delivered again, whether it was
   * held or arrives later (another node's event can reach this node after the client resumed).
   * When the last hold ends, the held events are queued in order.
   */
  release(since: string | null, replayed: Iterable<string>): void {
    if (since !== null) this.#raiseReplayedUpTo(since);
    for (const seq of replayed) this.#raiseReplayedUpTo(seq);
    if (--this.#holds > 0) return;
    const held = this.#held;
    this.#held = null;
    const upTo = this.#replayedUpTo;
    for (let taken = held?.shift(); taken !== undefined; taken = held?.shift()) {
      this.#lostOutsideQueue += taken.droppedBefore;
      const order = upTo === null ? null : compareCursors(taken.delivery.seq ?? "", upTo);
      if (order === null || order > 0) this.deliver(taken.delivery);
    }
  }

  #raiseReplayedUpTo(seq: string): void {
    const order = this.#replayedUpTo === null ? 1 : compareCursors(seq, this.#replayedUpTo);
    if (order !== null && order > 0) this.#replayedUpTo = seq;
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
    this.#dropReason = "bus_gap";
  }

  /**
   * Sends a control reply, or queues it behind the backlog so it keeps its place in line. A
   * reply takes the path of an event: it counts against the queue bound and waits for the
   * socket's high-water mark. A reply is never dropped: when the queue is full, the overflow
   * policy drops an event for it (`drop-oldest`, `conflate`) or, when there is none to drop or
   * under `disconnect`, the client is closed as a slow consumer (4008).
   */
  reply(frame: string): void {
    const delivery: Delivery = { frame, key: null };
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
    this.#pump().catch(() => this.close(DISCONNECT.shutdown));
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
