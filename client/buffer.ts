/**
 * The bounded buffer behind each subscription's async iterator: what the hub sent and the
 * application has not read yet. Full, it drops the oldest events and says how many before the
 * next item it hands out, so memory stays bounded when the application stops reading.
 * @module
 */

/**
 * What the buffer dropped, handed out before the next item.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BoundedBuffer, type Dropped } from "./buffer.ts";
 * const buffer = new BoundedBuffer<string>(1, () => true);
 * buffer.push("a");
 * buffer.push("b");
 * const first = await buffer[Symbol.asyncIterator]().next();
 * assert.deepEqual(first.value, { kind: "dropped", count: 1 } satisfies Dropped);
 * ```
 */
export interface Dropped {
  readonly kind: "dropped";
  /** Events dropped from this subscription's buffer because the application did not read. */
  readonly count: number;
}

/**
 * A bounded FIFO with an async iterator. `push` never blocks: when `capacity` items are held it
 * drops the oldest droppable item (see `droppable`); the iterator then yields a
 * {@linkcode Dropped} before the next item.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BoundedBuffer } from "./buffer.ts";
 * const buffer = new BoundedBuffer<number>(2, () => true);
 * buffer.push(1);
 * buffer.push(2);
 * buffer.push(3);
 * buffer.end();
 * const out = [];
 * for await (const item of buffer) out.push(item);
 * assert.deepEqual(out, [{ kind: "dropped", count: 1 }, 2, 3]);
 * ```
 */
export class BoundedBuffer<T> implements AsyncIterable<T | Dropped> {
  readonly #capacity: number;
  readonly #droppable: (item: T) => boolean;
  #items: T[] = [];
  #dropped = 0;
  #ended = false;
  #error: unknown = null;
  #waiter: (() => void) | null = null;

  /** `droppable` says which items may go when the buffer is full (others are kept). */
  constructor(capacity: number, droppable: (item: T) => boolean) {
    if (!(capacity >= 1)) throw new RangeError("a buffer needs room for at least one item");
    this.#capacity = capacity;
    this.#droppable = droppable;
  }

  /** Items held now. */
  get size(): number {
    return this.#items.length;
  }

  /** Events dropped so far and not yet reported. */
  get pendingDrops(): number {
    return this.#dropped;
  }

  /** Adds an item, dropping the oldest droppable one when full. Ignored after `end`. */
  push(item: T): void {
    if (this.#ended) return;
    if (this.#items.length >= this.#capacity) {
      let index = this.#items.findIndex(this.#droppable);
      if (index === -1) index = 0;
      this.#items.splice(index, 1);
      this.#dropped++;
    }
    this.#items.push(item);
    this.#wake();
  }

  /** Ends the iteration after what is held, or with `error` thrown at once. */
  end(error?: unknown): void {
    this.#ended = true;
    if (error !== undefined) {
      this.#error = error;
      this.#items = [];
    }
    this.#wake();
  }

  #wake(): void {
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T | Dropped> {
    for (;;) {
      if (this.#error !== null) throw this.#error;
      if (this.#dropped > 0) {
        const count = this.#dropped;
        this.#dropped = 0;
        yield { kind: "dropped", count };
        continue;
      }
      const item = this.#items.shift();
      if (item !== undefined) {
        yield item;
        continue;
      }
      if (this.#ended) return;
      await new Promise<void>((resolve) => (this.#waiter = resolve));
    }
  }
}
