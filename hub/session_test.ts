import assert from "node:assert/strict";
import { BusUnavailableError } from "./bus/bus.ts";
import { MemoryBus } from "./bus/memory.ts";
import { RequestError } from "./errors.ts";
import { FakeTransport, settle } from "./_fake_transport.ts";
import { type Principal, principal } from "./principal.ts";
import { testHub } from "./_test_hub.ts";
import { type RequestHandler, Session } from "./session.ts";

const LIMITS = {
  maxMessageBytes: 200,
  messageRate: 2,
  messageBurst: 3,
  strictEvents: false,
  maxEventDepth: 32,
};

async function open(
  options: { canPublish?: boolean; requests?: [string, RequestHandler][]; busDown?: boolean } = {},
) {
  const bus = new MemoryBus("node-1");
  if (options.busDown) {
    bus.publish = () => Promise.reject(new BusUnavailableError("Redis is down", 4));
  }
  const { hub, clock, metrics, connect } = await testHub({ bus });
  const { client, transport } = connect("t", options.canPublish ?? false);
  const session = new Session(hub, client, {
    limits: LIMITS,
    clock,
    metrics,
    requests: new Map(options.requests ?? []),
  });
  const send = async (message: unknown) => {
    session.receiveText(typeof message === "string" ? message : JSON.stringify(message));
    await settle();
  };
  return { hub, clock, client, transport, session, send };
}

Deno.test("session: ping, subscribe and unsubscribe are answered with their requestId", async () => {
  const { send, transport, hub } = await open();
  await send({ type: "ping", requestId: "1" });
  await send({ type: "subscribe", topic: "deploy.*", requestId: "2" });
  await send({ type: "unsubscribe", topic: "deploy.*", requestId: 3 });
  assert.deepEqual(transport.messages, [
    { type: "pong", requestId: "1" },
    {
      type: "response",
      topic: "deploy.*",
      requestId: "2",
      payload: { status: "subscribed", topic: "deploy.*" },
    },
    {
      type: "response",
      topic: "deploy.*",
      requestId: 3,
      payload: { status: "unsubscribed", topic: "deploy.*", removed: 1 },
    },
  ]);
  assert.deepEqual(transport.sent.map((o) => o.type), ["pong", "response", "response"]);
  assert.equal(hub.subscriptionCount, 0);
});

Deno.test("session: bad frames answer errors and keep the connection open", async () => {
  const { send, transport } = await open();
  await send("{not json");
  await send({ type: "dance", requestId: "x" });
  await send({ type: "subscribe", topic: "", requestId: "y" });
  assert.deepEqual(transport.messages.map((m) => [m.payload.code, m.requestId]), [
    ["bad_json", undefined],
    ["unknown_message_type", "x"],
    ["bad_message", "y"],
  ]);
  assert.equal(transport.closed, null);
});

Deno.test("session: the message rate is limited, and the allowance comes back with time", async () => {
  const { send, transport, clock } = await open();
  for (const requestId of ["1", "2", "3", "4"]) await send({ type: "ping", requestId });
  assert.deepEqual(transport.messages.map((m) => m.type), ["pong", "pong", "pong", "error"]);
  assert.equal(transport.messages[3]!.payload.code, "rate_limited");
  await clock.advance(500);
  await send({ type: "ping", requestId: "5" });
  assert.equal(transport.messages.at(-1)!.type, "pong");
});

Deno.test("session: publishing needs the grant; accepted events are answered and delivered", async () => {
  const event = { type: "deploy.step", appId: "web", payload: { step: "build", status: "ok" } };
  const reader = await open();
  await reader.send({ type: "publish", requestId: "p", event });
  assert.equal(reader.transport.messages[0]!.payload.code, "forbidden");

  const writer = await open({ canPublish: true });
  await writer.send({ type: "subscribe", topic: "deploy.*" });
  await writer.send({ type: "publish", requestId: "p", event });
  await writer.send({ type: "publish", requestId: "q", event: { type: "deploy.step" } });
  const [, delivered, accepted, invalid, more] = writer.transport.messages;
  assert.equal(delivered!.type, "deploy.step", "delivered before its acceptance is answered");
  assert.deepEqual([accepted!.payload.status, accepted!.requestId], ["accepted", "p"]);
  assert.equal(accepted!.payload.seq, delivered!.seq);
  assert.equal(invalid!.payload.code, "bad_event");
  assert.equal(more, undefined);
});

Deno.test("session: an unavailable bus answers unavailable", async () => {
  const { send, transport } = await open({ canPublish: true, busDown: true });
  await send({ type: "publish", requestId: "p", event: { type: "app.status", payload: {} } });
  assert.deepEqual(transport.messages[0]!.payload, {
    code: "unavailable",
    message: "Redis is down",
  });
});

Deno.test("session: requests are answered by their handler, through the error table", async () => {
  const { send, transport, clock } = await open({
    requests: [
      ["echo", (client, payload) => ({ tenant: client.tenant, ...payload })],
      ["missing", () => {
        throw new RequestError("not_found", "no such app");
      }],
      ["broken", () => {
        throw new TypeError("x is undefined");
      }],
    ],
  });
  await send({ type: "request", topic: "echo", requestId: "1", payload: { a: 1 } });
  await send({ type: "request", topic: "missing", requestId: "2" });
  await send({ type: "request", topic: "broken", requestId: "3" });
  await clock.advance(1000);
  await send({ type: "request", topic: "nope", requestId: "4" });
  const [echo, missing, broken, nope] = transport.messages;
  assert.deepEqual(echo, {
    type: "response",
    topic: "echo",
    requestId: "1",
    payload: { tenant: "t", a: 1 },
  });
  assert.equal(missing!.payload.code, "not_found");
  assert.deepEqual(broken!.payload, {
    code: "internal_error",
    message: "the hub failed to answer request broken",
  });
  assert.equal(nope!.payload.code, "unknown_topic");
  assert.equal(transport.closed, null, "a fault in a handler keeps the connection open");
});

Deno.test("session: an oversized message closes with 1009, a binary frame with 1003", async () => {
  const big = await open();
  await big.send({ type: "ping", requestId: "x".repeat(300) });
  assert.deepEqual(big.transport.closed, { code: 1009, reason: "message too big" });
  const binary = await open();
  binary.session.receiveBinary();
  assert.deepEqual(binary.transport.closed, {
    code: 1003,
    reason: "binary frames are not supported",
  });
});

Deno.test("session: scopes bound subscribe and publish; refresh replaces the principal within its tenant and re-arms expiry", async () => {
  const { hub, clock, metrics, connect } = await testHub();
  const { client, transport } = connect("acme", true);
  const scoped: Principal = {
    ...client.principal,
    may: { ...client.principal.may, subscribe: ["deploy.*"], publishTopics: ["deploy.step"] },
    expiresAt: clock.now() + 10_000,
  };
  client.principal = scoped;
  const timers: { run: () => void; ms: number; cancelled: boolean }[] = [];
  const tokens = new Map<string, Principal>([
    ["later", { ...scoped, expiresAt: clock.now() + 60_000 }],
    ["globex", { ...scoped, tenant: "globex" }],
  ]);
  const session = new Session(hub, client, {
    limits: { ...LIMITS, messageRate: 100, messageBurst: 100 },
    clock,
    metrics,
    requests: new Map(),
    identity: {
      expiryWarningMs: 1000,
      refresh: (token) => Promise.resolve(tokens.get(token) ?? "the token presented is not valid"),
      schedule: (run, ms) => {
        const timer = { run, ms, cancelled: false };
        timers.push(timer);
        return () => (timer.cancelled = true);
      },
    },
  });
  const send = async (message: unknown) => {
    session.receiveText(JSON.stringify(message));
    await settle();
  };
  assert.equal(timers.length, 1, "the warning is scheduled");
  assert.equal(timers[0]!.ms, 9000);

  await send({ type: "subscribe", topic: "*", requestId: "s1" });
  await send({ type: "subscribe", topic: "deploy.step", requestId: "s2" });
  await send({ type: "publish", event: { type: "deploy.queued" }, requestId: "p1" });
  await send({ type: "refresh", token: "nope", requestId: "r1" });
  await send({ type: "refresh", token: "globex", requestId: "r2" });
  await send({ type: "refresh", token: "later", requestId: "r3" });
  const byId = new Map(transport.messages.map((message) => [message.requestId, message]));
  assert.equal(byId.get("s1")!.payload.code, "forbidden");
  assert.equal(byId.get("s2")!.payload.status, "subscribed");
  assert.equal(byId.get("p1")!.payload.code, "forbidden");
  assert.equal(byId.get("r1")!.payload.code, "unauthorized");
  assert.equal(byId.get("r2")!.payload.code, "forbidden");
  assert.equal(byId.get("r3")!.payload.status, "refreshed");
  assert.equal(client.principal.tenant, "acme");
  assert.equal(client.principal.expiresAt, clock.now() + 60_000);
  assert.ok(timers[0]!.cancelled, "the old expiry no longer applies");
  assert.equal(timers.at(-1)!.ms, 59_000);
  session.close();
  assert.ok(timers.at(-1)!.cancelled);
  assert.equal(transport.closed, null);
});

Deno.test("session: without an identity (none mode) refresh is an unknown message type", async () => {
  const { send, transport } = await open();
  await send({ type: "refresh", token: "whatever-token", requestId: "r" });
  assert.deepEqual(transport.messages.at(-1), {
    type: "error",
    requestId: "r",
    payload: { code: "unknown_message_type", message: 'unknown message type "refresh"' },
  });
});

Deno.test("session: a user credential subscribes to its own user only; its session filter is narrowed to it", async () => {
  const { hub, clock, metrics } = await testHub();
  const transport = new FakeTransport(true);
  const user1 = {
    ...principal("t", "user1", false),
    may: { ...principal("t", "user1", false).may, subscribe: ["session.*"] },
  };
  const client = hub.connect(transport, user1, "test");
  const session = new Session(hub, client, { limits: LIMITS, clock, metrics, requests: new Map() });
  const send = async (message: unknown) => {
    session.receiveText(JSON.stringify(message));
    await settle();
  };
  await send({ type: "subscribe", topic: "session.*", requestId: 1, filter: { userId: "user2" } });
  assert.equal(transport.messages[0]!.payload.code, "forbidden");
  assert.equal(client.subscriptions.size, 0, "nothing changed");
  await send({ type: "subscribe", topic: "session.*", requestId: 2, filter: { userId: "user1" } });
  // Within its scopes (session.*), a session filter alone is narrowed to its own user.
  await send({
    type: "subscribe",
    topic: "session.*",
    requestId: 3,
    filter: { sessionId: "user2-gimp" },
  });
  assert.deepEqual(transport.messages.slice(1).map((m) => m.payload.status), [
    "subscribed",
    "subscribed",
  ]);
  await hub.publish("t", [
    { type: "session.created", userId: "user2", sessionId: "user2-gimp", payload: {} },
    { type: "session.created", userId: "user1", sessionId: "user1-firefox", payload: {} },
  ]);
  assert.deepEqual(transport.messages.slice(3).map((m) => m.userId), ["user1"]);
});
