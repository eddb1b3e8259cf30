/**
 * Pieces the bus implementations share: batching publishes per tick, and detecting gaps in
 * another node's messages with per-origin event counters.
 * @module
 */

import type { HeraldEvent } from "../../events/envelope.ts";
import type { EarlierAcceptances } from "./bus.ts";
import type { Acceptance } from "../idempotency.ts";

/** Earlier acceptances by index into the events of one flush. */
export type EarlierByIndex = ReadonlyMap<number, Acceptance>;

/** Sends one flush: all events published in a tick, with which of them are keyed. */
export type FlushSender = (
  events: readonly HeraldEvent[],
  keyed: readonly boolean[],
) => Promise<EarlierByIndex>;

interface Waiting {
  readonly events: readonly HeraldEvent[];
  readonly keyed: ReadonlySet<string>;
  readonly resolve: (earlier: EarlierAcceptances) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Collects the publishes of one event-loop tick into one flush, so a burst of publishes
 * becomes few bus messages. A flush succeeds or fails as a whole, so no caller sees a
 * partial publish. A flush starts early once `maxEvents` are waiting.
 */
export class TickBatcher {
  readonly #send: FlushSender;
  readonly #maxEvents: number;
  #waiting: Waiting[] = [];
  #waitingEvents = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(send: FlushSender, maxEvents: number) {
    this.#send = send;
    this.#maxEvents = maxEvents;
  }

  add(events: readonly HeraldEvent[], keyed: ReadonlySet<string>): Promise<EarlierAcceptances> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ events, keyed, resolve, reject });
      this.#waitingEvents += events.length;
      if (this.#waitingEvents >= this.#maxEvents) this.flush();
      else this.#timer ??= setTimeout(() => this.flush(), 0);
    });
  }

  /** Sends what is waiting now. */
  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const waiting = this.#waiting;
    if (waiting.length === 0) return;
    this.#waiting = [];
    this.#waitingEvents = 0;
    const events: HeraldEvent[] = [];
    const keyed: boolean[] = [];
    for (const call of waiting) {
      for (const event of call.events) {
        events.push(event);
        keyed.push(call.keyed.has(event.id));
      }
    }
    this.#send(events, keyed).then((earlier) => {
      let offset = 0;
      for (const call of waiting) {
        const mine = new Map<string, Acceptance>();
        if (earlier.size > 0) {
          call.events.forEach((event, index) => {
            const first = earlier.get(offset + index);
            if (first !== undefined) mine.set(event.id, first);
          });
        }
        offset += call.events.length;
        call.resolve(mine);
      }
    }, (error) => {
      for (const call of waiting) call.reject(error);
    });
  }

  /** Rejects everything still waiting (the bus is closing). */
  cancel(error: Error): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const call of this.#waiting) call.reject(error);
    this.#waiting = [];
    this.#waitingEvents = 0;
  }
}

/** What {@linkcode OriginTracker.accept} concluded about one message. */
export type OriginCheck =
  | { readonly state: "next" }
  | { readonly state: "gap"; readonly missed: number }
  /** The origin's counter went back: the bus lost its state (a Redis restart). */
  | { readonly state: "reset" };

/**
 * Detects lost messages. Every message carries `n`, the number of events its origin sent
 * before it, so a receiver knows exactly how many events it missed: `n - expected`.
 */
export class OriginTracker {
  readonly #expected = new Map<string, number>();

  /**
   * Checks one message of `count` events. For an origin never seen before, `heardFromStart`
   * says whether this node was listening before the origin began (then its first message must
   * have `n` 0); otherwise the first message seen sets the baseline.
   */
  accept(origin: string, n: number, count: number, heardFromStart = false): OriginCheck {
    const expected = this.#expected.get(origin) ?? (heardFromStart ? 0 : n);
    this.#expected.set(origin, n + count);
    if (n === expected) return { state: "next" };
    if (n > expected) return { state: "gap", missed: n - expected };
    return { state: "reset" };
  }

  /** Forgets an origin that said goodbye. */
  forget(origin: string): void {
    this.#expected.delete(origin);
  }
}
