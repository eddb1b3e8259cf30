import assert from "node:assert/strict";
import { waitFor } from "../tests/_harness.ts";
import { Client, type ClientLimits } from "./client.ts";
import { ManualClock } from "./clock.ts";
import { Metrics } from "./metrics.ts";
import { principal } from "./principal.ts";
import type { Transport } from "./transport.ts";

/** A transport that buffers what it is sent until `drain()`, and counts buffer readings. */
class BufferingTransport implements Transport {
  readonly sent: string[] = [];
  reads = 0;
  #buffered = 0;
  drainsAtOnce = false;

  send(frame: string): void {
    this.sent.push(frame);
    if (!this.drainsAtOnce) this.#buffered += new TextEncoder().encode(frame).byteLength;
  }

  get bufferedAmount(): number {
    this.reads++;
    return this.#buffered;
  }

  close(): void {}

  drain(): void {
    this.#buffered = 0;
  }
}

const LIMITS: ClientLimits = {
  bufferEvents: 100,
  highWaterBytes: 1024,
  overflow: "disconnect",
  stallTimeoutMs: 10_000,
  drainPollMs: 25,
};

function connect(transport: Transport, limits: ClientLimits, clock = new ManualClock()) {
  return new Client(transport, principal("t", "test", false), "test", {
    limits,
    clock,
    metrics: new Metrics(),
    onClose: () => {},
  });
}

const frames = (count: number, length: number) =>
  Array.from({ length: count }, (_, index) => `${index}:`.padEnd(length, "x"));

Deno.test("a keeping-up client writes through without reading its transport buffer per frame", () => {
  const transport = new BufferingTransport();
  transport.drainsAtOnce = true;
  const client = connect(transport, { ...LIMITS, highWaterBytes: 64 * 1024 });
  const sent = frames(1000, 100);
  for (const frame of sent) client.deliver({ frame, key: "k" });
  assert.deepEqual(transport.sent, sent);
  assert.ok(transport.reads < 20, `read the buffer ${transport.reads} times for 1000 frames`);
  client.close({ code: 1000, reason: "done", reconnect: false });
});

Deno.test("a client stops writing past the high-water mark and resumes in order after a drain", async () => {
  const transport = new BufferingTransport();
  const clock = new ManualClock();
  const client = connect(transport, LIMITS, clock);
  const sent = frames(10, 300);
  for (const frame of sent) client.deliver({ frame, key: "k" });
  // 300-byte frames: the fourth takes the buffer past 1 KiB; the rest wait in the queue.
  assert.deepEqual(transport.sent, sent.slice(0, 4));
  await clock.advance(0);
  assert.deepEqual(transport.sent, sent.slice(0, 4), "the pump waits for the drain");
  transport.drain();
  await clock.advance(LIMITS.drainPollMs);
  await waitFor(() => transport.sent.length >= 8, "the pump to write after the drain");
  transport.drain();
  await clock.advance(LIMITS.drainPollMs);
  await waitFor(() => transport.sent.length === 10, "the rest of the frames");
  assert.deepEqual(transport.sent, sent);
  client.close({ code: 1000, reason: "done", reconnect: false });
});
