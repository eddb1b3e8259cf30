/**
 * A client's bounded outgoing buffer, exposed as an async iterator for its pump.
 *
 * Mechanism only: it refuses events past its capacity and offers the operations overflow
 * policies need (drop the oldest event, conflate); which one runs is decided in `overflow.ts`.
 * @module
 */

import type { Outgoing } from "./transport.ts";

/**
 * One frame waiting to be written. Event frames carry their conflation key (type and appId)
 * and are shared by every client the event goes to; control replies have `key: null` and are
 * never dropped or conflated.
 */
export interface Delivery extends Outgoing {
  readonly key: string | null;
}

/** An item handed to the pump, with how many events were dropped right before it. */
export interface Taken {
  readonly delivery: Delivery;
  readonly droppedBefore: number;
}

/** Outcome of offering an event to a queue. */
export type Offer = { readonly state: "ok" } | { readonly state: "full" } | {
  readonly state: "closed";
};

const OK: Offer = { state: "ok" };
const FULL: Offer = { state: "full" };
const CLOSED: Offer = { state: "closed" };
const DONE: IteratorResult<Taken> = { done: true, value: undefined };

/**
 * A FIFO of deliveries bounded in frames (events and control replies together); iterate it to
 * drain it. Dropped events are counted
 * against the item that follows them, so the pump can announce the gap exactly where it is,
 * even when drops happen between dequeuing an item and writing it.
 */
export class DeliveryQueue implements AsyncIterableIterator<Taken> {
  readonly capacity: number;
  #items: Delivery[] = [];
  #head = 0;
  /** Frames held: events and control replies, both bounded by `capacity`. */
  #frames = 0;
  #closed = false;
  /** Events dropped since the last item was taken: they were ahead of the current head. */
  #droppedAhead = 0;
  #waiter: ((result: IteratorResult<Taken>) => void) | null = null;
  /** Made on first use: most queues never have a producer waiting for room. */
  #roomWaiters: (() => void)[] | null = null;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  /** Frames waiting, events and control replies together. */
  get depth(): number {
    return this.#items.length - this.#head;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** True while another frame fits. */
  get hasRoom(): boolean {
    return this.#frames < this.capacity;
  }

  /**
   * Resolves once another event fits or the queue is closed. Lets a producer that must not
   * lose events (a replay) pace itself to the consumer instead of overflowing.
   */
  room(): Promise<void> {
    if (this.hasRoom || this.#closed) return Promise.resolve();
    return new Promise((resolve) => (this.#roomWaiters ??= []).push(resolve));
  }

  /**
   * Adds an event or a control reply unless the queue holds `capacity` frames already. Replies
   * count like events, so what one client can make the hub hold stays bounded whether it
   * subscribes or sends requests it never reads the answers to.
   */
  offer(item: Delivery): Offer {
    if (this.#closed) return CLOSED;
    if (this.#frames >= this.capacity) return FULL;
    this.#frames++;
    this.#append(item);
    return OK;
  }

  /** Removes the oldest queued event (not control reply). Returns false when there is none. */
  dropOldestEvent(): boolean {
    for (let index = this.#head; index < this.#items.length; index++) {
      if (this.#items[index]!.key !== null) {
        this.#items.splice(index, 1);
        this.#frames--;
        this.#droppedAhead++;
        return true;
      }
    }
    return false;
  }

  /**
   * Removes every queued event superseded by a newer one with the same key, counting
   * `incomingKey` as the newest. Returns how many were removed.
   */
  conflate(incomingKey: string): number {
    const seen = new Set<string>([incomingKey]);
    const kept: Delivery[] = [];
    let removed = 0;
    for (let index = this.#items.length - 1; index >= this.#head; index--) {
      const item = this.#items[index]!;
      if (item.key !== null && seen.has(item.key)) {
        removed++;
        continue;
      }
      if (item.key !== null) seen.add(item.key);
      kept.push(item);
    }
    this.#items = kept.reverse();
    this.#head = 0;
    this.#frames -= removed;
    this.#droppedAhead += removed;
    return removed;
  }

  /** Ends iteration; queued frames are discarded. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#items = [];
    this.#head = 0;
    this.#frames = 0;
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.(DONE);
    this.#wakeRoomWaiters();
  }

  /** Takes the oldest item now, or undefined when the queue is empty (a synchronous drain). */
  shift(): Taken | undefined {
    return this.#head < this.#items.length ? this.#take().value as Taken : undefined;
  }

  next(): Promise<IteratorResult<Taken>> {
    if (this.#head < this.#items.length) return Promise.resolve(this.#take());
    if (this.#closed) return Promise.resolve(DONE);
    return new Promise((resolve) => {
      this.#waiter = resolve;
    });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Taken> {
    return this;
  }

  #append(item: Delivery): void {
    const waiter = this.#waiter;
    if (waiter !== null) {
      // The pump is parked on an empty queue: hand the item over without storing it.
      this.#waiter = null;
      this.#frames--;
      waiter({ done: false, value: this.#taken(item) });
      return;
    }
    this.#items.push(item);
  }

  #taken(delivery: Delivery): Taken {
    const droppedBefore = this.#droppedAhead;
    this.#droppedAhead = 0;
    return { delivery, droppedBefore };
  }

  #take(): IteratorResult<Taken> {
    const item = this.#items[this.#head]!;
    this.#head++;
    this.#frames--;
    if (this.#roomWaiters !== null) this.#wakeRoomWaiters();
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return { done: false, value: this.#taken(item) };
  }

  #wakeRoomWaiters(): void {
    const waiters = this.#roomWaiters ?? [];
    this.#roomWaiters = null;
    for (const wake of waiters) wake();
  }
}
