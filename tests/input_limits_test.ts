/**
 * Hostile input that must be refused with a documented answer and leave the hub exactly as it
 * was: payloads nested too deep, numbers JSON cannot carry, request ids too long or not exact,
 * too many topics on connect, floods of malformed frames, and clients that never read their
 * replies. Also the one meaning of `since` (exclusive) on every path that takes it.
 * @module
 */

import assert from "node:assert/strict";
import { systemClock } from "../hub/clock.ts";
import { UnencodableEventError } from "../hub/history/history.ts";
import { RedisHistory } from "../hub/history/redis.ts";
import {
  type Frame,
  openTestHub,
  procMemory,
  publishSeqs,
  readMetrics,
  redisMissing,
  spawnHub,
  startRedis,
  startTestHub,
  TEST_TOKEN,
  TestClient,
  type TestHub,
  waitFor,
} from "./_harness.ts";
import { RawWebSocket } from "./_raw_ws.ts";
import { SseReader } from "./_sse.ts";

/** `{"d":[[...[1]...]]}` nested `levels` arrays deep, as text (too deep to build as an object). */
function deepPayload(levels: number): string {
  return `{"d":${"[".repeat(levels)}1${"]".repeat(levels)}}`;
}

const step = (n: number) => ({
  type: "deploy.step",
  appId: "web",
  payload: { step: `s${n}`, status: "running" },
});

Deno.test("a publish nested 10,000 levels deep gets 400 bad_event and the history stays exact", async () => {
  await using hub = startTestHub();
  const before = await publishSeqs(hub, [step(1), step(2), step(3)]);
  const deep = await hub.publish(`{"type":"a.b","payload":${deepPayload(10_000)}}`);
  assert.equal(deep.status, 400);
  const body = await deep.json();
  assert.equal(body.error.code, "bad_event");
  assert.equal(body.error.index, 0);
  assert.match(body.error.message, /nest at most 32 levels/);
  const [e5] = await publishSeqs(hub, step(5));
  const number = (seq: string) => Number(seq.split("-")[1]);
  assert.equal(number(e5!), number(before[2]!) + 1, "the refused publish took no cursor");
  const history = await (await fetch(`${hub.url}/history?since=${before[2]}`)).json();
  assert.deepEqual(history.events.map((event: Frame) => event.seq), [e5]);
  const all = await (await fetch(`${hub.url}/history?since=${before[0]}`)).json();
  assert.deepEqual(all.events.map((event: Frame) => event.seq), [before[1], before[2], e5]);
});

Deno.test("HERALD_MAX_EVENT_DEPTH bounds payload nesting; numbers JSON cannot carry are refused", async () => {
  await using hub = startTestHub({ HERALD_MAX_EVENT_DEPTH: "4" });
  // The payload object is level 1: {"d":[[[1]]]} is four levels.
  assert.equal((await hub.publish(`{"type":"a.b","payload":${deepPayload(3)}}`)).status, 202);
  const tooDeep = await hub.publish(`{"type":"a.b","payload":${deepPayload(4)}}`);
  assert.equal(tooDeep.status, 400);
  assert.equal((await tooDeep.json()).error.code, "bad_event");
  for (const number of ["1e400", "-1e400"]) {
    const response = await hub.publish(`[{"type":"a.b"},{"type":"a.b","payload":{"n":${number}}}]`);
    assert.equal(response.status, 400, number);
    const body = await response.json();
    assert.deepEqual([body.error.code, body.error.index], ["bad_event", 1], number);
  }
  await using client = await TestClient.connect(`${hub.wsUrl}?token=${TEST_TOKEN}`);
  client.send(
    `{"type":"publish","requestId":"deep","event":{"type":"a.b","payload":${deepPayload(10_000)}}}`,
  );
  const reply = await client.reply("deep");
  assert.deepEqual([reply.type, reply.payload.code], ["error", "bad_event"]);
  assert.equal((await client.request({ type: "ping", requestId: "alive" })).type, "pong");
});

Deno.test({
  name: "redis history: an event that cannot be encoded rejects its batch and takes no cursor",
  ignore: redisMissing() !== null,
  fn: async () => {
    await using redis = await startRedis();
    const history = new RedisHistory(
      { maxEvents: 100, ttlMs: 60_000 },
      systemClock,
      redis.url,
      2000,
      "il",
    );
    await history.start();
    try {
      const draft = (n: number, payload: Record<string, unknown> = {}) => ({
        tenant: "t",
        type: "a.b",
        payload: { n, ...payload } as Record<string, number>,
        id: `id-${n}`,
        timestamp: new Date(0).toISOString(),
      });
      await history.append("t", [draft(1)]);
      await assert.rejects(
        () => history.append("t", [draft(2), draft(3, { big: 1n })]),
        (error: unknown) => error instanceof UnencodableEventError && error.index === 1,
      );
      const [next] = await history.append("t", [draft(4)]);
      assert.equal(next!.event.seq, `${history.epoch}-2`);
      const page = await history.read("t", { since: `${history.epoch}-1`, limit: 10 });
      assert.deepEqual(page.state === "ok" && page.events.map((e) => e.event.id), ["id-4"]);
    } finally {
      await history.close();
    }
  },
});

Deno.test("malformed frames count against the rate limit like any other", async () => {
  await using hub = startTestHub({ HERALD_MESSAGE_RATE: "1", HERALD_MESSAGE_BURST: "3" });
  await using client = await TestClient.connect(hub.wsUrl);
  for (let index = 0; index < 6; index++) client.send(index % 2 === 0 ? "{not json" : "[]");
  await waitFor(() => client.frames.length >= 6, "six replies");
  const codes = client.frames.map((frame) => frame.payload.code);
  assert.deepEqual(codes, [
    "bad_json",
    "bad_message",
    "bad_json",
    "rate_limited",
    "rate_limited",
    "rate_limited",
  ]);
});

Deno.test("requestId: strings up to 128 characters and safe integers are echoed; anything else is bad_message", async () => {
  await using hub = startTestHub();
  await using client = await TestClient.connect(hub.wsUrl);
  const longest = "r".repeat(128);
  assert.equal((await client.request({ type: "ping", requestId: longest })).type, "pong");
  assert.equal((await client.request({ type: "ping", requestId: -9007199254740991 })).type, "pong");
  for (
    const raw of [
      `"${"r".repeat(129)}"`,
      "1e400",
      "-1e400",
      "1.5",
      "9007199254740992",
      "{}",
      "null",
    ]
  ) {
    client.frames.length = 0;
    client.send(`{"type":"ping","requestId":${raw}}`);
    const reply = await client.waitForFrame(() => true, `reply to requestId ${raw.slice(0, 20)}`);
    assert.equal(reply.type, "error", raw.slice(0, 20));
    assert.equal(reply.payload.code, "bad_message", raw.slice(0, 20));
    assert.equal("requestId" in reply, false, "a refused requestId is not echoed");
  }
});

Deno.test("error messages quote at most 64 characters of what the client sent", async () => {
  await using hub = startTestHub();
  await using client = await TestClient.connect(hub.wsUrl);
  const long = "x".repeat(100_000);
  const cases = [
    { type: long, requestId: "type" },
    { type: "subscribe", topic: `${long} `, requestId: "topic" },
    { type: "subscribe", topic: "*", filter: { [long]: "v" }, requestId: "filter" },
  ];
  for (const message of cases) {
    const reply = await client.request(message);
    assert.equal(reply.type, "error");
    assert.ok(
      JSON.stringify(reply).length < 400,
      `${message.requestId}: ${JSON.stringify(reply).length}`,
    );
  }
});

Deno.test("/ws and /events/stream with more topics than the subscription limit get 400", async () => {
  await using hub = startTestHub({ HERALD_MAX_SUBSCRIPTIONS: "100" });
  const query = (count: number) =>
    Array.from({ length: count }, (_, n) => `topic=t${n}.*`).join("&");
  const over = await RawWebSocket.handshake(hub.port, `/ws?${query(150)}`);
  over.socket.close();
  assert.equal(over.status, 400);
  assert.match(over.headers, /application\/json/);
  const sse = await fetch(`${hub.url}/events/stream?${query(101)}`);
  assert.equal(sse.status, 400);
  assert.equal((await sse.json()).error.code, "bad_request");
  // Exactly the limit, and duplicates (one subscription), are fine.
  await using atLimit = await TestClient.connect(`${hub.wsUrl}?${query(100)}&topic=t0.*`);
  await waitFor(() => hub.app.hub.subscriptionCount === 100, "100 subscriptions");
  await publishSeqs(hub, { type: "t99.x" });
  await atLimit.waitForEvents(1);
});

Deno.test("since is exclusive everywhere: /history, request history, resume and Last-Event-ID", async () => {
  for (const history of ["memory", "kv"]) {
    const dir = await Deno.makeTempDir({ prefix: "herald-since-" });
    const hub: TestHub = await openTestHub({
      HERALD_HISTORY: history,
      HERALD_KV_PATH: `${dir}/history.sqlite`,
    });
    try {
      const seqs = await publishSeqs(hub, [step(1), step(2), step(3)]);
      const expected = seqs.slice(2);
      const rest = await (await fetch(`${hub.url}/history?since=${seqs[1]}`)).json();
      assert.deepEqual(rest.events.map((e: Frame) => e.seq), expected, `${history}: GET /history`);
      await using client = await TestClient.connect(`${hub.wsUrl}?topic=none.*`);
      const reply = await client.request({
        type: "request",
        topic: "history",
        requestId: "h",
        payload: { since: seqs[1] },
      });
      assert.deepEqual(
        reply.payload.events.map((e: Frame) => e.seq),
        expected,
        `${history}: request`,
      );
      await using resumed = await TestClient.connect(
        `${hub.wsUrl}?topic=deploy.*&since=${seqs[1]}`,
      );
      await resumed.waitForEvents(1);
      const stream = await SseReader.open(`${hub.url}/events/stream?topic=deploy.*`, {
        "last-event-id": seqs[1]!,
      });
      try {
        await waitFor(() => stream.events.length >= 1, "an SSE event");
        await publishSeqs(hub, step(4));
        await resumed.waitForEvents(2);
        await waitFor(() => stream.events.length >= 2, "two SSE events");
        assert.deepEqual(resumed.events[0]!.seq, expected[0], `${history}: resume`);
        assert.deepEqual(stream.events[0]!.id, expected[0], `${history}: Last-Event-ID`);
      } finally {
        await stream.close();
      }
    } finally {
      await hub.close();
      await Deno.remove(dir, { recursive: true });
    }
  }
});

const MIB = 1024 * 1024;

/**
 * Sends batches of frames until done, the hub ends the connection, or a write has not completed
 * for 3 s (the hub stopped reading: back-pressure bounds it too); true when all were sent.
 */
async function flood(
  socket: RawWebSocket,
  batches: number,
  batch: () => string[],
): Promise<boolean> {
  for (let index = 0; index < batches; index++) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stuck = new Promise<"stuck">((
      resolve,
    ) => (timer = setTimeout(() => resolve("stuck"), 3000)));
    const sent = socket.sendTexts(batch()).then(() => "sent" as const, () => "closed" as const);
    const outcome = await Promise.race([sent, stuck]);
    clearTimeout(timer);
    if (outcome !== "sent") return false;
  }
  return true;
}

Deno.test("a client that never reads its replies holds bounded memory, and is closed with 4008", async () => {
  // No rate limit to speak of, so only the reply path bounds what the hub holds.
  await using hub = await spawnHub({
    HERALD_MESSAGE_RATE: "1000000",
    HERALD_MESSAGE_BURST: "1000000",
    HERALD_STALL_TIMEOUT_MS: "60000",
  });
  const pid = hub.child.pid;
  // Warm up: one client through the same paths, so code and buffers are allocated already.
  const { socket: warm } = await RawWebSocket.handshake(hub.port);
  await warm.sendTexts(
    Array.from({ length: 2000 }, (_, n) => JSON.stringify({ type: "ping", requestId: n })),
  );
  await warm.readTextsUntil((text) => text.includes('"requestId":1999'));
  warm.close();
  const baseline = await procMemory(pid);

  // 400,000 pings whose replies are about 160 bytes: some 64 MiB if every reply were kept.
  const { socket } = await RawWebSocket.handshake(hub.port);
  const ping = JSON.stringify({ type: "ping", requestId: "r".repeat(128) });
  await flood(socket, 40, () => Array.from({ length: 10_000 }, () => ping));
  await new Promise((resolve) => setTimeout(resolve, 300));
  // The peak counts: every reply kept would have been held at once.
  const pings = Math.max(await procMemory(pid, "VmHWM"), await procMemory(pid)) - baseline;
  assert.ok(
    pings < 32 * MIB,
    `400,000 unread replies grew the hub by ${(pings / MIB).toFixed(1)} MiB`,
  );
  // And 500 pings with a 400 KB requestId (200 MB of echoes before): refused, not echoed.
  const { socket: echoes } = await RawWebSocket.handshake(hub.port);
  const huge = JSON.stringify({ type: "ping", requestId: "x".repeat(400_000) });
  await flood(echoes, 10, () => Array.from({ length: 50 }, () => huge));
  await new Promise((resolve) => setTimeout(resolve, 300));
  // The peak again: an echo of each would have held some 200 MB at once.
  const echoed = Math.max(await procMemory(pid, "VmHWM"), await procMemory(pid)) - baseline;
  assert.ok(
    echoed < 96 * MIB,
    `500 refused 400 KB requestIds grew the hub by ${(echoed / MIB).toFixed(1)} MiB at the peak`,
  );
  await waitFor(
    async () => {
      const metrics = await readMetrics(hub.url);
      return metrics.get('herald_slow_consumer_disconnects_total{reason="queue_full"}') === 1;
    },
    "the client that never read closed because its queue of replies was full (4008)",
  );
  socket.close();
  echoes.close();
});
