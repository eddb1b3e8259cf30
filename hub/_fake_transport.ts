/**
 * Test doubles for the hub's unit tests: a transport that records what it is sent and buffers
 * it until told to drain, so tests drive the pump with the injected clock.
 * @module
 */

import type { Outgoing, Transport } from "./transport.ts";

/** A transport that buffers what it is sent until `drain()`, and counts buffer readings. */
export class FakeTransport implements Transport {
  readonly sent: Outgoing[] = [];
  closed: { code: number; reason: string } | null = null;
  reads = 0;
  #buffered = 0;
  /** When true, every frame leaves the buffer at once (a client that keeps up). */
  drainsAtOnce = false;

  constructor(drainsAtOnce = false) {
    this.drainsAtOnce = drainsAtOnce;
  }

  /** The frames sent, as text. */
  get frames(): string[] {
    return this.sent.map((outgoing) => outgoing.frame);
  }

  /** The frames sent, parsed. */
  // deno-lint-ignore no-explicit-any
  get messages(): Record<string, any>[] {
    return this.frames.map((frame) => JSON.parse(frame));
  }

  send(outgoing: Outgoing): void {
    if (this.closed !== null) throw new Error("Sent on a closed transport");
    this.sent.push(outgoing);
    if (!this.drainsAtOnce) this.#buffered += new TextEncoder().encode(outgoing.frame).byteLength;
  }

  get bufferedAmount(): number {
    this.reads++;
    return this.#buffered;
  }

  close(code: number, reason: string): void {
    this.closed ??= { code, reason };
  }

  drain(): void {
    this.#buffered = 0;
  }
}

/** Lets every pending promise continuation run (a few turns of the microtask queue). */
export async function settle(turns = 20): Promise<void> {
  for (let turn = 0; turn < turns; turn++) await Promise.resolve();
}
