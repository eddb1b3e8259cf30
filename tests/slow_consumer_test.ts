/**
 * Slow consumers against a real hub: a raw TCP client completes the WebSocket handshake and
 * stops reading, so the kernel buffers fill and the hub sees real back-pressure. For each
 * overflow policy: the stalled client's memory stays within its bounds, healthy clients get
 * every event without waiting for it, and nothing is lost without the client being told.
 */
import assert from "node:assert/strict";
import {
  readMetrics,
  spawnHub,
  startTestHub,
  TestClient,
  type TestHub,
  waitFor,
} from "./_harness.ts";
import { RawWebSocket } from "./_raw_ws.ts";
import { SseReader, StalledSseClient } from "./_sse.ts";

const PAYLOAD = "x".repeat(16 * 1024);
const BATCH = 50;

/** Publishes batches of 16 KiB events until `done` says so; returns how many were published. */
async function publishUntil(
  hub: TestHub,
  done: (published: number) => Promise<boolean>,
  keyOf: (n: number) => { type: string; appId: string } = () => ({
    type: "log.line",
    appId: "web",
  }),
  maxBatches = 200,
): Promise<{ published: number; maxDepth: number; maxBuffered: number }> {
  let published = 0;
  let maxDepth = 0;
  let maxBuffered = 0;
  for (let batch = 0; batch < maxBatches; batch++) {
    const events = Array.from({ length: BATCH }, () => {
      const n = published++;
      return { ...keyOf(n), payload: { line: PAYLOAD, n } };
    });
    const response = await hub.publish(events);
    assert.equal(response.status, 202);
    await response.body?.cancel();
    const metrics = await readMetrics(hub.url);
    maxDepth = Math.max(maxDepth, metrics.get("herald_queue_depth_max")!);
    maxBuffered = Math.max(maxBuffered, metrics.get("herald_socket_buffered_bytes_max")!);
    if (await done(published)) return { published, maxDepth, maxBuffered };
  }
  throw new Error(`Condition not reached after ${maxBatches} batches`);
}

/** Resumes reading until the `zz.marker` event, while the hub keeps running. */
async function readToMarker(raw: RawWebSocket) {
  const texts = await raw.readTextsUntil((text) => text.includes('"zz.marker"'));
  raw.close();
  return texts.map((text) => JSON.parse(text));
}

/** The frames a stalled client reads once it resumes, as parsed JSON. */
async function drain(raw: RawWebSocket) {
  const { texts, closeCode } = await raw.readUntilClose();
  raw.close();
  return { frames: texts.map((text) => JSON.parse(text)), closeCode };
}

const FRAME_BYTES = 16 * 1024 + 200;

Deno.test("disconnect policy: a stalled client is closed with 4008 and never exceeds its bounds", async () => {
  await using hub = startTestHub({ HERALD_CLIENT_BUFFER: "64" });
  await using healthy = await TestClient.connect(hub.wsUrl);
  const { socket: stalled } = await RawWebSocket.handshake(hub.port);
  await waitFor(() => hub.app.hub.clientCount === 2, "both clients connected");
  const { published, maxDepth, maxBuffered } = await publishUntil(hub, async () => {
    const metrics = await readMetrics(hub.url);
    return metrics.get('herald_slow_consumer_disconnects_total{reason="queue_full"}') === 1;
  });
  assert.ok(maxDepth <= 64, `queue depth ${maxDepth} stays within HERALD_CLIENT_BUFFER`);
  assert.ok(
    maxBuffered <= 1024 * 1024 + FRAME_BYTES,
    `socket buffer ${maxBuffered} stays near the high-water mark`,
  );
  await healthy.waitForEvents(published);
  assert.deepEqual(
    healthy.events.map((e) => e.payload.n),
    Array.from({ length: published }, (_, n) => n),
  );
  const { frames, closeCode } = await drain(stalled);
  assert.equal(closeCode, 4008);
  const received = frames.map((frame) => frame.payload.n);
  assert.deepEqual(
    received,
    Array.from({ length: received.length }, (_, n) => n),
    "what arrived is in order",
  );
  assert.ok(received.length < published);
});

Deno.test("disconnect policy over SSE: a stalled stream is ended with 4008 within its bounds", async () => {
  await using hub = startTestHub({ HERALD_CLIENT_BUFFER: "64" });
  await using healthySse = await SseReader.open(`${hub.url}/events/stream`);
  await using healthyWs = await TestClient.connect(hub.wsUrl);
  using stalled = await StalledSseClient.open(hub.port);
  await waitFor(() => hub.app.hub.clientCount === 3, "three clients connected");
  // A few MiB fill the kernel buffers and the stream's high-water mark; 40 batches (32 MiB)
  // are far more, so a stream that buffers without bound fails here rather than eating memory.
  const { published, maxDepth, maxBuffered } = await publishUntil(
    hub,
    async () => {
      const metrics = await readMetrics(hub.url);
      return metrics.get('herald_slow_consumer_disconnects_total{reason="queue_full"}') === 1;
    },
    undefined,
    40,
  );
  assert.ok(maxDepth <= 64, `queue depth ${maxDepth} stays within HERALD_CLIENT_BUFFER`);
  assert.ok(
    maxBuffered <= 1024 * 1024 + FRAME_BYTES,
    `stream buffer ${maxBuffered} stays near the high-water mark`,
  );
  const all = Array.from({ length: published }, (_, n) => n);
  await healthyWs.waitForEvents(published);
  assert.deepEqual(healthyWs.events.map((e) => e.payload.n), all);
  await healthySse.waitForEvents(published);
  assert.deepEqual(healthySse.events.map((e) => e.data.payload.n), all);
  assert.equal(hub.app.hub.clientCount, 2, "only the stalled stream was dropped");
  // Reading again, the stalled client finds what was sent before the close, then its end.
  const text = await stalled.readToEnd();
  const close = text.match(/event: close\ndata: (.*)\n\n$/);
  assert.ok(close, `the stream ends with a close event: ${text.slice(-200)}`);
  assert.equal(JSON.parse(close[1]!).code, 4008);
  const received = [...text.matchAll(/^data: (\{"type":"log\.line".*)$/gm)]
    .map((match) => JSON.parse(match[1]!).payload.n);
  assert.deepEqual(received, all.slice(0, received.length), "what arrived is in order");
  assert.ok(received.length < published);
});

Deno.test("drop-oldest: the stalled client stays within bounds and is told exactly what it lost", async () => {
  await using hub = startTestHub({
    HERALD_CLIENT_BUFFER: "32",
    HERALD_OVERFLOW: "drop-oldest",
    HERALD_STALL_TIMEOUT_MS: "600000",
  });
  await using healthy = await TestClient.connect(hub.wsUrl);
  const { socket: stalled } = await RawWebSocket.handshake(hub.port);
  await waitFor(() => hub.app.hub.clientCount === 2, "both clients connected");
  const { published, maxDepth, maxBuffered } = await publishUntil(hub, async () => {
    const metrics = await readMetrics(hub.url);
    return (metrics.get('herald_events_dropped_total{reason="drop_oldest"}') ?? 0) >= 200;
  });
  assert.ok(maxDepth <= 32, `queue depth ${maxDepth}`);
  assert.ok(maxBuffered <= 1024 * 1024 + FRAME_BYTES, `socket buffer ${maxBuffered}`);
  // The healthy client got everything while the stalled one is still connected and stuck.
  await healthy.waitForEvents(published);
  assert.equal(hub.app.hub.clientCount, 2);
  // Resume reading: every event either arrives or is counted in a lagged notice before the next.
  await hub.publish({ type: "zz.marker", appId: "web" });
  const frames = await readToMarker(stalled);
  const events = frames.filter((frame) => "seq" in frame);
  const notices = frames.filter((frame) => frame.type === "lagged");
  assert.ok(notices.length > 0, "at least one lagged notice");
  for (const notice of notices) assert.equal(notice.payload.reason, "drop_oldest");
  const dropped = notices.reduce((sum, notice) => sum + notice.payload.dropped, 0);
  assert.equal(events.length + dropped, published + 1, "received + reported dropped = published");
  assert.equal(events.at(-1)!.type, "zz.marker");
  const numbers = events.slice(0, -1).map((event) => event.payload.n);
  assert.deepEqual(numbers, [...numbers].sort((a, b) => a - b), "still in order");
  // A lagged notice comes right before the first event after a gap.
  for (const [index, frame] of frames.entries()) {
    if (frame.type !== "lagged") continue;
    const before = frames.slice(0, index).filter((f) => "seq" in f).at(-1)?.payload.n ?? -1;
    const after = frames[index + 1]!;
    assert.ok("seq" in after);
    if (after.type === "log.line") {
      assert.ok(
        after.payload.n > before + 1,
        `notice ${JSON.stringify(frame)} after ${before}, before ${after.payload.n}; ${
          frames.map((f) => f.payload?.n ?? f.type).join(",")
        }`,
      );
    }
  }
});

Deno.test("conflate: only superseded events go, the newest of each type and app always arrives", async () => {
  await using hub = startTestHub({
    HERALD_CLIENT_BUFFER: "16",
    HERALD_OVERFLOW: "conflate",
    HERALD_STALL_TIMEOUT_MS: "600000",
  });
  const { socket: stalled } = await RawWebSocket.handshake(hub.port);
  await waitFor(() => hub.app.hub.clientCount === 1, "client connected");
  const apps = ["a", "b", "c", "d"];
  const keyOf = (n: number) => ({ type: "log.line", appId: apps[n % apps.length]! });
  const { published, maxDepth } = await publishUntil(
    hub,
    async () =>
      ((await readMetrics(hub.url)).get('herald_events_dropped_total{reason="conflated"}') ?? 0) >=
        100,
    keyOf,
  );
  assert.ok(maxDepth <= 16, `queue depth ${maxDepth}`);
  await hub.publish({ type: "zz.marker", appId: "z" });
  const frames = await readToMarker(stalled);
  const events = frames.filter((frame) => "seq" in frame && frame.type !== "zz.marker");
  const notices = frames.filter((frame) => frame.type === "lagged");
  assert.ok(notices.some((notice) => notice.payload.reason === "conflated"));
  const dropped = notices.reduce((sum, notice) => sum + notice.payload.dropped, 0);
  assert.equal(events.length + dropped, published);
  for (const app of apps) {
    const newest = Math.max(
      ...Array.from({ length: published }, (_, n) => n).filter((n) => keyOf(n).appId === app),
    );
    assert.equal(events.filter((event) => event.appId === app).at(-1)!.payload.n, newest, app);
  }
});

Deno.test("a client whose socket does not drain for the stall timeout is closed with 4008", async () => {
  await using hub = startTestHub({
    HERALD_OVERFLOW: "drop-oldest",
    HERALD_STALL_TIMEOUT_MS: "300",
  });
  const { socket: stalled } = await RawWebSocket.handshake(hub.port);
  await waitFor(() => hub.app.hub.clientCount === 1, "client connected");
  await publishUntil(
    hub,
    async () => (await readMetrics(hub.url)).get("herald_socket_buffered_bytes_max")! > 1024 * 1024,
  );
  await waitFor(
    async () =>
      (await readMetrics(hub.url)).get(
        'herald_slow_consumer_disconnects_total{reason="stalled"}',
      ) === 1,
    "the stall timeout to close the client",
  );
  assert.equal(hub.app.hub.clientCount, 0);
  const { closeCode } = await drain(stalled);
  assert.equal(closeCode, 4008);
});

Deno.test("a stalled client does not raise the hub's memory with what is published", async () => {
  await using hub = await spawnHub({
    HERALD_OVERFLOW: "drop-oldest",
    HERALD_CLIENT_BUFFER: "16",
    HERALD_STALL_TIMEOUT_MS: "600000",
    // This test is about the client's bounds; the history's own bound is tested beside it.
    HERALD_HISTORY_MAX_BYTES: "1048576",
  });
  const { socket: stalled } = await RawWebSocket.handshake(hub.port);
  const payload = "y".repeat(60 * 1024);
  const publishMiB = async (count: number) => {
    for (let index = 0; index < count; index++) {
      const events = Array.from(
        { length: 16 },
        () => ({ type: "log.line", payload: { line: payload } }),
      );
      const response = await fetch(`${hub.url}/events`, {
        method: "POST",
        headers: {
          authorization: "Bearer test-publish-token-0123456789",
          "content-type": "application/json",
        },
        body: JSON.stringify(events),
      });
      assert.equal(response.status, 202);
      await response.body?.cancel();
    }
  };
  // Warm up: the stalled socket reaches its bounds and the heap its working size. Then ~384
  // MiB more flows past the stalled client; buffering it would grow the process by as much.
  // Each 202 means the events were routed, so the stalled client has been offered them all.
  await publishMiB(128);
  const before = await hub.rss();
  await publishMiB(384);
  const growth = (await hub.rss()) - before;
  const metrics = await readMetrics(hub.url);
  stalled.close();
  assert.ok(metrics.get("herald_queue_depth_max")! <= 16);
  assert.ok(
    growth < 64 * 1024 * 1024,
    `RSS grew ${(growth / 1048576).toFixed(1)} MiB while 384 MiB went past a stalled client`,
  );
});

Deno.test("a stalled client that keeps sending still finds 4008 when it reads again", async () => {
  await using hub = startTestHub({
    HERALD_OVERFLOW: "drop-oldest",
    HERALD_STALL_TIMEOUT_MS: "300",
  });
  const { socket: stalled } = await RawWebSocket.handshake(hub.port);
  await waitFor(() => hub.app.hub.clientCount === 1, "client connected");
  // Never reads, but keeps sending: Deno tears a closing socket down when a message arrives.
  let sending = true;
  const sender = (async () => {
    for (let n = 0; sending; n++) {
      try {
        await stalled.sendText(JSON.stringify({ type: "ping", requestId: n }));
      } catch {
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  await publishUntil(
    hub,
    async () =>
      (await readMetrics(hub.url)).get(
        'herald_slow_consumer_disconnects_total{reason="stalled"}',
      ) === 1,
  );
  // Let several messages arrive while the close is pending before reading again.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const { closeCode } = await drain(stalled);
  sending = false;
  await sender;
  assert.equal(closeCode, 4008);
});
