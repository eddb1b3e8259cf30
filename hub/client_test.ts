import assert from "node:assert/strict";
import { Client, type ClientLimits } from "./client.ts";
import { ManualClock } from "./clock.ts";
import { Metrics } from "./metrics.ts";
import { principal } from "./principal.ts";
import { FakeTransport, settle } from "./_fake_transport.ts";
import type { Transport } from "./transport.ts";

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
  const transport = new FakeTransport();
  transport.drainsAtOnce = true;
  const client = connect(transport, { ...LIMITS, highWaterBytes: 64 * 1024 });
  const sent = frames(1000, 100);
  for (const frame of sent) client.deliver({ frame, type: "t", key: "k" });
  assert.deepEqual(transport.frames, sent);
  assert.ok(transport.reads < 20, `read the buffer ${transport.reads} times for 1000 frames`);
  client.close({ code: 1000, reason: "done", reconnect: false });
});

Deno.test("a client stops writing past the high-water mark and resumes in order after a drain", async () => {
  const transport = new FakeTransport();
  const clock = new ManualClock();
  const client = connect(transport, LIMITS, clock);
  const sent = frames(10, 300);
  for (const frame of sent) client.deliver({ frame, type: "t", key: "k" });
  // 300-byte frames: the fourth takes the buffer past 1 KiB; the rest wait in the queue.
  assert.deepEqual(transport.frames, sent.slice(0, 4));
  await clock.advance(0);
  assert.deepEqual(transport.frames, sent.slice(0, 4), "the pump waits for the drain");
  transport.drain();
  await clock.advance(LIMITS.drainPollMs);
  await settle();
  assert.equal(transport.sent.length, 8, "the pump wrote up to the high-water mark again");
  transport.drain();
  await clock.advance(LIMITS.drainPollMs);
  await settle();
  assert.deepEqual(transport.frames, sent);
  client.close({ code: 1000, reason: "done", reconnect: false });
});
