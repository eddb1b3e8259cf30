/**
 * A bounded fuzz suite over what anonymous and token-holding clients can send: WebSocket frames
 * (random JSON, near-valid control messages, huge, deep and odd values, binary and invalid UTF-8
 * frames) and `POST /events` bodies and headers. Every reply must be a documented one (an error
 * code of `events/codes.ts` or `server/responses.ts`, a close code of `DISCONNECT`), no reply
 * and no log line may carry a stack trace, and afterwards the hub must still serve a normal
 * publish and subscribe with its memory (VmRSS) and open file descriptors back within a bound.
 *
 * `deno task test` runs a short pass with a fixed seed. `deno task fuzz` runs a long one with a
 * random seed (printed); `HERALD_FUZZ_SEED` and `HERALD_FUZZ_RUNS` set either.
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { DISCONNECT, ERROR_CODES } from "../events/codes.ts";
import { HTTP_ERRORS } from "../server/responses.ts";
import {
  type HubProcess,
  procMemory,
  spawnHub,
  TEST_TOKEN,
  TestClient,
  waitFor,
} from "./_harness.ts";
import { RawWebSocket } from "./_raw_ws.ts";

const LONG = Deno.args.includes("--long");
const SEED = Number(Deno.env.get("HERALD_FUZZ_SEED") ?? (LONG ? Date.now() % 2 ** 31 : 20261203));
const RUNS = Number(Deno.env.get("HERALD_FUZZ_RUNS") ?? (LONG ? 2000 : 200));
console.log(`fuzz: seed ${SEED}, ${RUNS} runs per property (HERALD_FUZZ_SEED, HERALD_FUZZ_RUNS)`);

const MIB = 1024 * 1024;
/** HERALD_MAX_MESSAGE_BYTES of the fuzzed hub (the default). */
const MAX_MESSAGE_BYTES = 512 * 1024;
const ERROR_CODE_SET = new Set<string>(Object.values(ERROR_CODES));
const CLOSE_CODES = new Set<number>(Object.values(DISCONNECT).map((disconnect) => disconnect.code));
/** A JavaScript stack frame, as `Error.stack` prints it. */
const STACK = /\bat (?:async )?\S*\s*\(?(?:file|ext|node):[^\s)]*:\d+:\d+|\n\s+at \S/;
const decoder = new TextDecoder();

// ---- Arbitraries ---------------------------------------------------------------------------

const oddString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom("", "*", "deploy.*", "a.b", "__proto__", "constructor", "\u0000", "\ud800", "é"),
  fc.integer({ min: 1000, max: 200_000 }).map((length) => "x".repeat(length)),
);
const oddNumberText = fc.constantFrom(
  "1e400",
  "-1e400",
  "-0",
  "9007199254740993",
  "1.5",
  "0.1e-400",
  "1E2",
  "-9007199254740991",
);
/** JSON text nested `levels` deep, too deep to build as an object safely. */
const deepText = fc.integer({ min: 20, max: 100_000 }).map((levels) =>
  `${"[".repeat(levels)}${"]".repeat(levels)}`
);
/** A JSON value as text: random JSON, or odd numbers and deep nesting JSON.stringify cannot make. */
const valueText = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((value) => JSON.stringify(value)) },
  { weight: 1, arbitrary: oddString.map((value) => JSON.stringify(value)) },
  { weight: 1, arbitrary: oddNumberText },
  { weight: 1, arbitrary: deepText },
);
const topicText = fc.oneof(
  fc.constantFrom("*", "deploy.*", "deploy.step", "a.b.*", "history", "state", "apps"),
  oddString,
).map((topic) => JSON.stringify(topic));
/** Absent or `usual` mostly, an odd value now and then. */
function rarelyOdd(usual: fc.Arbitrary<string>): fc.Arbitrary<string | undefined> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.constant(undefined) },
    { weight: 4, arbitrary: usual },
    { weight: 1, arbitrary: valueText },
  );
}

const eventText = fc.record({
  type: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('"a.b"', '"fuzz.event"', '"deploy.step"') },
    { weight: 1, arbitrary: valueText },
  ),
  appId: rarelyOdd(fc.constant('"web"')),
  payload: fc.option(
    fc.oneof(
      {
        weight: 4,
        arbitrary: fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }))
          .map((payload) => JSON.stringify(payload)),
      },
      { weight: 1, arbitrary: valueText },
      { weight: 2, arbitrary: deepText.map((deep) => `{"d":${deep}}`) },
      { weight: 2, arbitrary: oddNumberText.map((number) => `{"n":${number}}`) },
    ),
    { nil: undefined },
  ),
  id: rarelyOdd(fc.uuid().map((id) => JSON.stringify(id))),
  extra: fc.oneof(
    { weight: 9, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.tuple(oddString, valueText) },
  ),
}).map(({ extra, ...fields }) => {
  const parts = Object.entries(fields).flatMap(([key, value]) =>
    value === undefined ? [] : [`"${key}":${value}`]
  );
  if (extra !== undefined) parts.push(`${JSON.stringify(extra[0])}:${extra[1]}`);
  return `{${parts.join(",")}}`;
});
/** A control message that is almost right: real types and fields with odd values mixed in. */
const nearValidMessage = fc.record({
  type: fc.oneof(
    {
      weight: 5,
      arbitrary: fc.constantFrom("subscribe", "unsubscribe", "ping", "publish", "request").map((
        type,
      ) => JSON.stringify(type)),
    },
    { weight: 1, arbitrary: valueText },
  ),
  requestId: fc.option(
    fc.oneof(
      fc.string({ maxLength: 128 }).map((id) => JSON.stringify(id)),
      fc.integer().map(String),
      oddNumberText,
      valueText,
    ),
    { nil: undefined },
  ),
  topic: fc.option(topicText, { nil: undefined }),
  filter: fc.option(
    fc.oneof(
      fc.record({ appId: fc.constant('"web"') }).map(() => '{"appId":"web"}'),
      valueText,
    ),
    { nil: undefined },
  ),
  since: fc.option(fc.oneof(fc.constantFrom('"x-1"', '"0-0"', "null"), valueText), {
    nil: undefined,
  }),
  event: fc.option(eventText, { nil: undefined }),
  payload: fc.option(
    fc.oneof(valueText, fc.constantFrom('{"since":"x-0"}', '{"limit":"2"}', '{"appId":"web"}')),
    { nil: undefined },
  ),
}).map((fields) =>
  `{${
    Object.entries(fields).flatMap(([key, value]) =>
      value === undefined ? [] : [`"${key}":${value}`]
    ).join(",")
  }}`
);

type WsFrame =
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "binary"; readonly bytes: Uint8Array }
  | { readonly kind: "badUtf8" };

const wsFrame: fc.Arbitrary<WsFrame> = fc.oneof(
  { weight: 6, arbitrary: nearValidMessage.map((text) => ({ kind: "text" as const, text })) },
  { weight: 2, arbitrary: valueText.map((text) => ({ kind: "text" as const, text })) },
  {
    weight: 1,
    arbitrary: fc.string({ maxLength: 200 }).map((text) => ({ kind: "text" as const, text })),
  },
  {
    weight: 1,
    arbitrary: fc.uint8Array({ maxLength: 64 }).map((bytes) => ({
      kind: "binary" as const,
      bytes,
    })),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "badUtf8" as const }) },
);

// ---- Checks --------------------------------------------------------------------------------

function assertNoStack(text: string, where: string): void {
  assert.ok(!STACK.test(text), `${where} carries a stack trace: ${text.slice(0, 500)}`);
}

/** Checks one frame the hub sent; returns true when it answers a message (not an event). */
function checkServerText(text: string): boolean {
  assertNoStack(text, "a reply");
  const frame = JSON.parse(text);
  assert.equal(typeof frame, "object");
  if ("seq" in frame) return false;
  if (frame.type === "lagged") return false;
  assert.ok(
    ["pong", "response", "error"].includes(frame.type),
    `undocumented reply ${text.slice(0, 200)}`,
  );
  if (frame.type === "error") {
    assert.ok(
      ERROR_CODE_SET.has(frame.payload?.code),
      `undocumented error code in ${text.slice(0, 200)}`,
    );
    assert.equal(typeof frame.payload.message, "string");
    assert.notEqual(
      frame.payload.code,
      ERROR_CODES.internal,
      `internal error: ${text.slice(0, 300)}`,
    );
  }
  return true;
}

/** Reads the next frame, or null when the connection ended or nothing came for `ms`. */
async function readWithin(socket: RawWebSocket, ms: number) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((
    resolve,
  ) => (timer = setTimeout(() => resolve("timeout"), ms)));
  try {
    return await Promise.race([socket.readFrame(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Sends `frames` on a fresh connection and checks every answer until each text frame got one. */
async function exerciseWebSocket(hub: HubProcess, frames: readonly WsFrame[], withToken: boolean) {
  const { status, socket } = await RawWebSocket.handshake(
    hub.port,
    withToken ? `/ws?token=${TEST_TOKEN}` : "/ws",
  );
  assert.equal(status, 101);
  try {
    let expected = 0;
    let closing = false;
    /** The runtime drops a connection that sends invalid UTF-8 without a close frame (documented). */
    let dropped = false;
    for (const frame of frames) {
      if (frame.kind === "text") {
        await socket.sendText(frame.text);
        if (new TextEncoder().encode(frame.text).byteLength > MAX_MESSAGE_BYTES) {
          // Closes with 1009; a frame sent after it could only meet a reset connection.
          closing = true;
          break;
        }
        expected++;
      } else {
        // Both end the connection: nothing after them is read.
        if (frame.kind === "binary") await socket.sendBinary(frame.bytes);
        else await socket.sendRaw(0x81, new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]));
        closing = true;
        dropped = frame.kind === "badUtf8";
        break;
      }
    }
    let answered = 0;
    while (closing || answered < expected) {
      const frame = await readWithin(socket, 10_000);
      assert.notEqual(frame, "timeout", `no answer after ${answered} of ${expected} replies`);
      if (frame === null || frame === "timeout") {
        assert.ok(dropped, "the connection ended without a close frame");
        return;
      }
      if (frame.opcode === 8) {
        const code = frame.data.byteLength >= 2 ? (frame.data[0]! << 8) | frame.data[1]! : null;
        assert.ok(code !== null && CLOSE_CODES.has(code), `undocumented close code ${code}`);
        assertNoStack(decoder.decode(frame.data.subarray(2)), "a close reason");
        return;
      }
      if (frame.opcode !== 1) continue;
      if (checkServerText(decoder.decode(frame.data))) answered++;
    }
  } finally {
    socket.close();
  }
}

const headerName = fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,20}$/).filter((name) =>
  ![
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "expect",
    "te",
    "keep-alive",
    "trailer",
  ]
    .includes(name.toLowerCase())
);
const headerValue = fc.stringMatching(/^[\x20-\x7e]{0,60}$/).map((value) => value.trim());
const publishRequest = fc.record({
  body: fc.oneof(
    { weight: 3, arbitrary: eventText },
    {
      weight: 2,
      arbitrary: fc.array(eventText, { maxLength: 5 }).map((events) => `[${events.join(",")}]`),
    },
    { weight: 2, arbitrary: valueText },
    { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }) },
  ),
  contentType: fc.oneof(
    {
      weight: 8,
      arbitrary: fc.constantFrom("application/json", "application/json; charset=utf-8"),
    },
    { weight: 1, arbitrary: fc.constantFrom("APPLICATION/JSON", "text/plain", undefined) },
    { weight: 1, arbitrary: headerValue },
  ),
  authorization: fc.oneof(
    { weight: 8, arbitrary: fc.constant(`Bearer ${TEST_TOKEN}`) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        "Bearer wrong",
        "Basic abc",
        "Bearer",
        `bearer  ${TEST_TOKEN}`,
        undefined,
      ),
    },
    { weight: 1, arbitrary: headerValue },
  ),
  extra: fc.array(fc.tuple(headerName, headerValue), { maxLength: 4 }),
});

type PublishRequest = typeof publishRequest extends fc.Arbitrary<infer T> ? T : never;

/** What the publish property has seen: the newest cursor number accepted. */
const published = { epoch: "", last: 0 };

/** `value` as JSON, with numbers JSON cannot carry spelled out so they never equal `null`. */
function canonical(value: unknown): string {
  return JSON.stringify(
    value,
    (_key, item) => typeof item === "number" && !Number.isFinite(item) ? `<${item}>` : item,
  );
}

/**
 * An accepted publish is stored exactly: each new event takes the next cursor (a refused
 * publish uses none up), and the history holds its payload as it was sent.
 */
async function checkStored(hub: HubProcess, body: string | Uint8Array, answer: string) {
  const sent = JSON.parse(typeof body === "string" ? body : decoder.decode(body));
  const inputs = Array.isArray(sent) ? sent : [sent];
  const accepted = JSON.parse(answer).accepted as { id: string; seq: string }[];
  assert.equal(accepted.length, inputs.length);
  for (const [index, { seq }] of accepted.entries()) {
    const dash = seq.lastIndexOf("-");
    const [epoch, n] = [seq.slice(0, dash), Number(seq.slice(dash + 1))];
    if (epoch === published.epoch && n <= published.last) continue; // a repeated id
    if (published.epoch === epoch) {
      assert.equal(n, published.last + 1, `cursor ${seq} skips after ${published.last}`);
    }
    Object.assign(published, { epoch, last: n });
    const page = await (await fetch(`${hub.url}/history?since=${epoch}-${n - 1}&limit=1`)).json();
    assert.equal(page.events[0]?.seq, seq, "GET /history after the previous cursor");
    assert.equal(
      canonical(page.events[0].payload),
      canonical(inputs[index].payload ?? {}),
      "the stored payload is what was published",
    );
  }
}

async function exercisePublish(hub: HubProcess, request: PublishRequest) {
  const headers = new Headers();
  for (const [name, value] of request.extra) {
    if (name.toLowerCase() !== "authorization" && name.toLowerCase() !== "content-type") {
      headers.append(name, value);
    }
  }
  if (request.contentType !== undefined) headers.set("content-type", request.contentType);
  if (request.authorization !== undefined) headers.set("authorization", request.authorization);
  const response = await fetch(`${hub.url}/events`, {
    method: "POST",
    headers,
    body: request.body as BodyInit,
  });
  const text = await response.text();
  assertNoStack(text, "an HTTP answer");
  if (response.status === 202) {
    await checkStored(hub, request.body, text);
    return;
  }
  const code = JSON.parse(text)?.error?.code as keyof typeof HTTP_ERRORS;
  assert.ok(
    code in HTTP_ERRORS,
    `undocumented HTTP error ${response.status} ${text.slice(0, 200)}`,
  );
  assert.equal(HTTP_ERRORS[code], response.status, `${code} answered with ${response.status}`);
  assert.notEqual(response.status, 500);
}

// ---- The suite -----------------------------------------------------------------------------

async function openFds(pid: number): Promise<number> {
  let count = 0;
  for await (const _ of Deno.readDir(`/proc/${pid}/fd`)) count++;
  return count;
}

Deno.test("every documented code appears in docs/protocol.md", async () => {
  const protocol = await Deno.readTextFile(new URL("../docs/protocol.md", import.meta.url));
  for (const code of [...ERROR_CODE_SET, ...Object.keys(HTTP_ERRORS)]) {
    assert.ok(protocol.includes(`\`${code}\``), `${code} is not documented in docs/protocol.md`);
  }
  for (const code of CLOSE_CODES) {
    assert.ok(protocol.includes(`| ${code} `), `close code ${code} is not in docs/protocol.md`);
  }
});

Deno.test({
  name: `fuzz: WebSocket frames and POST /events get documented answers (seed ${SEED})`,
  // The long run may take minutes.
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // Retention is small, so what the hub may keep by design (history, state) cannot hide a leak.
    await using hub = await spawnHub({
      HERALD_MESSAGE_RATE: "1000",
      // A connection the fuzzer ends abruptly is held by the runtime's heartbeat timer for up to
      // the ping interval (docs/operations.md): a short one keeps that bounded retention from
      // reading as a leak in the second pass.
      HERALD_PING_INTERVAL: "2",
      HERALD_MESSAGE_BURST: "1000",
      HERALD_HISTORY_MAX_BYTES: String(4 * MIB),
      HERALD_STATE_MAX_ENTRIES: "100",
      HERALD_IDEMPOTENCY_MAX_KEYS: "1000",
    });
    const pid = hub.child.pid;
    // Warm up the paths the check below uses, then take the baseline.
    await checkNormalUse(hub);
    const baselineRss = await procMemory(pid);
    const baselineFds = await openFds(pid);

    const pass = async (seed: number) => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(wsFrame, { minLength: 1, maxLength: 6 }),
          fc.boolean(),
          (frames, withToken) => exerciseWebSocket(hub, frames, withToken),
        ),
        { seed, numRuns: RUNS },
      );
      // Only this property publishes from here on: each new cursor must follow the last one.
      Object.assign(published, { epoch: "", last: 0 });
      await fc.assert(
        fc.asyncProperty(publishRequest, (request) => exercisePublish(hub, request)),
        { seed, numRuns: RUNS },
      );
      await checkNormalUse(hub);
    };
    // Two passes: the first may grow the heap to what parsing such input needs (V8 keeps the
    // pages); a second pass of as much input must not grow it much further, or something leaks.
    await pass(SEED);
    const afterFirst = await procMemory(pid);
    await pass(SEED + 1);
    const leaked = (await procMemory(pid)) - afterFirst;
    assert.ok(
      leaked < 48 * MIB,
      `a second pass grew the hub's RSS by ${(leaked / MIB).toFixed(1)} MiB`,
    );
    // Connections the fuzzer opened are all closed: descriptors come back.
    const fds = await waitFor(
      async () => {
        const now = await openFds(pid);
        return now <= baselineFds + 4 ? now : null;
      },
      `open descriptors back near ${baselineFds}`,
      10_000,
    ).catch(async () => await openFds(pid));
    assert.ok(fds <= baselineFds + 4, `${fds} descriptors open, ${baselineFds} before`);
    const grown = (await procMemory(pid)) - baselineRss;
    assert.ok(grown < 192 * MIB, `the hub's RSS grew by ${(grown / MIB).toFixed(1)} MiB`);
    const logs = hub.logs.join("\n");
    assertNoStack(logs, "the hub's log");
    assert.ok(
      !/"level":"(ERROR|FATAL)"/i.test(logs),
      `errors were logged:\n${logs.slice(0, 2000)}`,
    );
  },
});

/** A normal subscribe and publish work: the client receives the event. */
async function checkNormalUse(hub: HubProcess): Promise<void> {
  await using client = await TestClient.connect(`${hub.wsUrl}?topic=fuzz.check`);
  const reply = await client.request({ type: "ping", requestId: "alive" });
  assert.equal(reply.type, "pong");
  const response = await fetch(`${hub.url}/events`, {
    method: "POST",
    headers: { authorization: `Bearer ${TEST_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ type: "fuzz.check", payload: { ok: true } }),
  });
  assert.equal(response.status, 202);
  await response.body?.cancel();
  const [event] = await client.waitForEvents(1);
  assert.deepEqual(event!.payload, { ok: true });
}
