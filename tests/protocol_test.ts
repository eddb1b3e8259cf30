/**
 * The WebSocket wire contract (v1), against a real hub with real WebSocket clients:
 * event frames, subscriptions, control messages, every error code and close code.
 */
import assert from "node:assert/strict";
import { startTestHub, TEST_TOKEN, TestClient, waitFor } from "./_harness.ts";
import { RawWebSocket } from "./_raw_ws.ts";

Deno.test("an event frame carries type, appId, namespace, payload, id, seq and timestamp", async () => {
  await using hub = startTestHub();
  await using client = await TestClient.connect(hub.wsUrl);
  const payload = { step: "build", status: "building", nested: { list: [1, "two", null] } };
  await hub.publish({
    type: "deploy.step",
    appId: "mail-agent",
    namespace: "production",
    payload,
    id: "producer-id-1",
  });
  await hub.publish({ type: "app.restarted", appId: "mail-agent" });
  const [step, restarted] = await client.waitForEvents(2);
  assert.deepEqual(Object.keys(step!).sort(), [
    "appId",
    "id",
    "namespace",
    "payload",
    "seq",
    "timestamp",
    "type",
  ]);
  assert.equal(step!.type, "deploy.step");
  assert.equal(step!.appId, "mail-agent");
  assert.equal(step!.namespace, "production");
  assert.deepEqual(step!.payload, payload);
  assert.equal(step!.id, "producer-id-1");
  assert.equal(typeof step!.seq, "string");
  assert.ok(!Number.isNaN(Date.parse(step!.timestamp)));
  assert.equal("namespace" in restarted!, false, "namespace only when the event has one");
  assert.deepEqual(restarted!.payload, {}, "an event without payload is delivered with {}");
  assert.notEqual(restarted!.id, step!.id);
  assert.notEqual(restarted!.seq, step!.seq);
});

Deno.test("subscribe answers with the topic and the requestId", async () => {
  await using hub = startTestHub();
  await using client = await TestClient.connect(hub.wsUrl);
  const reply = await client.request({
    type: "subscribe",
    topic: "deploy.*",
    requestId: "1",
    filter: { appId: "mail-agent", namespace: "production" },
  });
  assert.deepEqual(reply, {
    type: "response",
    topic: "deploy.*",
    requestId: "1",
    payload: { status: "subscribed", topic: "deploy.*" },
  });
  const numeric = await client.request({ type: "subscribe", topic: "forge.*", requestId: 7 });
  assert.equal(numeric.requestId, 7, "numeric request ids are echoed as numbers");
});

Deno.test("topic patterns: * matches all, a prefix matches any depth, an exact type only itself", async () => {
  await using hub = startTestHub();
  const all = await TestClient.connect(hub.wsUrl + "?topic=*");
  const prefix = await TestClient.connect(hub.wsUrl + "?topic=session.*");
  const exact = await TestClient.connect(hub.wsUrl + "?topic=session.created");
  const types = ["session.created", "session.state.changed", "sessionx.created", "deploy.queued"];
  await hub.publish(types.map((type) => ({ type })));
  const marker = { type: "zz.marker" };
  await hub.publish(marker);
  await all.waitForEvents(types.length + 1);
  await waitFor(
    () => prefix.events.length >= 2 && exact.events.length >= 1,
    "prefix and exact events",
  );
  // Every client got everything it matches before the marker, which only `*` matches.
  assert.deepEqual(all.events.map((event) => event.type), [...types, "zz.marker"]);
  assert.deepEqual(prefix.events.map((event) => event.type), [
    "session.created",
    "session.state.changed",
  ]);
  assert.deepEqual(exact.events.map((event) => event.type), ["session.created"]);
  await Promise.all([all.close(), prefix.close(), exact.close()]);
});

Deno.test("filters match appId and namespace exactly", async () => {
  await using hub = startTestHub();
  await using client = await TestClient.connect(hub.wsUrl + "?topic=deploy.*");
  await client.request({
    type: "subscribe",
    topic: "deploy.*",
    requestId: "f",
    filter: { appId: "web", namespace: "prod" },
  });
  await client.request({ type: "unsubscribe", topic: "deploy.*", requestId: "u" });
  await client.request({
    type: "subscribe",
    topic: "deploy.*",
    requestId: "f2",
    filter: { appId: "web", namespace: "prod" },
  });
  await hub.publish([
    { type: "deploy.queued", appId: "web", namespace: "staging", id: "wrong-namespace" },
    { type: "deploy.queued", appId: "web2", namespace: "prod", id: "wrong-app" },
    { type: "deploy.queued", appId: "web", id: "no-namespace" },
    { type: "deploy.queued", appId: "web", namespace: "prod", id: "match" },
  ]);
  const [event] = await client.waitForEvents(1);
  assert.equal(event!.id, "match");
  // A later matching event proves nothing else was in flight before it.
  await hub.publish({ type: "deploy.completed", appId: "web", namespace: "prod", id: "match-2" });
  await client.waitForEvents(2);
  assert.deepEqual(client.events.map((e) => e.id), ["match", "match-2"]);
});

Deno.test("a client with overlapping subscriptions receives each event once", async () => {
  await using hub = startTestHub();
  await using client = await TestClient.connect(
    hub.wsUrl + "?topic=*&topic=deploy.*&topic=deploy.queued",
  );
  await hub.publish([{ type: "deploy.queued", appId: "a" }, {
    type: "deploy.step",
    appId: "a",
    payload: { step: "s", status: "ok" },
  }]);
  await hub.publish({ type: "zz.marker" });
  await client.waitForEvents(3);
  assert.deepEqual(client.events.map((e) => e.type), ["deploy.queued", "deploy.step", "zz.marker"]);
});

Deno.test("unsubscribe stops delivery and answers unsubscribed", async () => {
  await using hub = startTestHub();
  await using client = await TestClient.connect(hub.wsUrl + "?topic=deploy.*&topic=zz.marker");
  const reply = await client.request({ type: "unsubscribe", topic: "deploy.*", requestId: "2" });
  assert.equal(reply.type, "response");
  assert.equal(reply.payload.status, "unsubscribed");
  assert.equal(reply.payload.topic, "deploy.*");
  await hub.publish([{ type: "deploy.queued" }, { type: "zz.marker" }]);
  await client.waitForEvents(1);
  assert.deepEqual(client.events.map((e) => e.type), ["zz.marker"]);
});

Deno.test("ping gets a pong with the same requestId", async () => {
  await using hub = startTestHub();
  await using client = await TestClient.connect(hub.wsUrl);
  assert.deepEqual(await client.request({ type: "ping", requestId: "3" }), {
    type: "pong",
    requestId: "3",
  });
});

Deno.test("a connection without topic gets everything until its first explicit subscribe", async () => {
  await using hub = startTestHub();
  await using client = await TestClient.connect(hub.wsUrl);
  await hub.publish({ type: "forge.completed", appId: "x" });
  await client.waitForEvents(1);
  await client.request({ type: "subscribe", topic: "deploy.*", requestId: "s" });
  await hub.publish([{ type: "forge.completed", appId: "x" }, {
    type: "deploy.queued",
    appId: "x",
  }]);
  await client.waitForEvents(2);
  assert.deepEqual(client.events.map((e) => e.type), ["forge.completed", "deploy.queued"]);
});

Deno.test("query parameters topic, appId and namespace subscribe on connect", async () => {
  await using hub = startTestHub();
  await using client = await TestClient.connect(
    hub.wsUrl + "?topic=deploy.*&topic=health.check&appId=web&namespace=prod",
  );
  await hub.publish([
    { type: "deploy.queued", appId: "other", namespace: "prod" },
    { type: "forge.completed", appId: "web", namespace: "prod" },
    { type: "health.check", appId: "web", namespace: "prod", payload: { healthy: true } },
    { type: "deploy.queued", appId: "web", namespace: "prod" },
  ]);
  await client.waitForEvents(2);
  assert.deepEqual(client.events.map((e) => e.type), ["health.check", "deploy.queued"]);
});

Deno.test("a bad topic in the query string is refused before upgrading", async () => {
  await using hub = startTestHub();
  const { status, socket } = await RawWebSocket.handshake(hub.port, "/ws?topic=Not-A-Topic");
  socket.close();
  assert.equal(status, 400);
});

Deno.test("publish over WebSocket needs the publish token", async () => {
  await using hub = startTestHub();
  await using anonymous = await TestClient.connect(hub.wsUrl);
  const refused = await anonymous.request({
    type: "publish",
    requestId: "4",
    event: { type: "deploy.queued", appId: "web" },
  });
  assert.equal(refused.type, "error");
  assert.equal(refused.payload.code, "forbidden");
  assert.equal(anonymous.events.length, 0, "a refused publish delivers nothing");

  await using viaHeader = await TestClient.connect(hub.wsUrl, {
    authorization: `Bearer ${TEST_TOKEN}`,
  });
  const accepted = await viaHeader.request({
    type: "publish",
    requestId: "5",
    event: { type: "deploy.queued", appId: "web" },
  });
  assert.equal(accepted.type, "response");
  assert.equal(accepted.payload.status, "accepted");
  assert.equal(typeof accepted.payload.id, "string");
  assert.equal(typeof accepted.payload.seq, "string");
  const [event] = await anonymous.waitForEvents(1);
  assert.equal(event!.id, accepted.payload.id);

  await using viaQuery = await TestClient.connect(`${hub.wsUrl}?token=${TEST_TOKEN}`);
  const invalid = await viaQuery.request({
    type: "publish",
    requestId: "6",
    event: { type: "Deploy" },
  });
  assert.equal(invalid.payload.code, "bad_event");
});

Deno.test("a wrong token on upgrade is refused with 401", async () => {
  await using hub = startTestHub();
  const { status, socket } = await RawWebSocket.handshake(hub.port, "/ws", {
    authorization: "Bearer not-the-token-at-all",
  });
  socket.close();
  assert.equal(status, 401);
});

Deno.test("request with an unknown topic gets unknown_topic", async () => {
  await using hub = startTestHub();
  await using client = await TestClient.connect(hub.wsUrl);
  const reply = await client.request({ type: "request", topic: "nonsense", requestId: "r" });
  assert.equal(reply.type, "error");
  assert.equal(reply.payload.code, "unknown_topic");
});

Deno.test("every error code answers with the requestId and keeps the connection open", async () => {
  await using hub = startTestHub({ HERALD_MAX_SUBSCRIPTIONS: "2" });
  await using client = await TestClient.connect(hub.wsUrl);
  client.send("{not json");
  const badJson = await client.waitForFrame((f) => f.type === "error", "bad_json error");
  assert.equal(badJson.payload.code, "bad_json");
  const cases: [unknown, string][] = [
    [{ type: "subscribe", requestId: "a" }, "bad_message"],
    [{ type: "subscribe", topic: "UPPER.*", requestId: "b" }, "bad_message"],
    [{ type: "subscribe", topic: "*", filter: { other: "x" }, requestId: "c" }, "bad_message"],
    [{ type: "fly", requestId: "d" }, "unknown_message_type"],
    [{ requestId: "e" }, "bad_message"],
    [{ type: "request", topic: "nope", requestId: "f" }, "unknown_topic"],
    [{ type: "publish", event: { type: "deploy.queued" }, requestId: "g" }, "forbidden"],
  ];
  for (const [message, code] of cases) {
    const requestId = (message as { requestId: string }).requestId;
    client.send(message);
    const reply = await client.reply(requestId);
    assert.equal(reply.type, "error", JSON.stringify(message));
    assert.equal(reply.payload.code, code, JSON.stringify(message));
    assert.equal(typeof reply.payload.message, "string");
  }
  await client.request({ type: "subscribe", topic: "a.*", requestId: "s1" });
  await client.request({ type: "subscribe", topic: "b.*", requestId: "s2" });
  const limit = await client.request({ type: "subscribe", topic: "c.*", requestId: "s3" });
  assert.equal(limit.payload.code, "limit_exceeded");
  assert.equal(client.socket.readyState, WebSocket.OPEN);
  assert.equal((await client.request({ type: "ping", requestId: "alive" })).type, "pong");
});

Deno.test("messages past the rate limit get rate_limited and are not processed", async () => {
  await using hub = startTestHub({ HERALD_MESSAGE_RATE: "1", HERALD_MESSAGE_BURST: "3" });
  await using client = await TestClient.connect(hub.wsUrl);
  for (let index = 0; index < 5; index++) client.send({ type: "ping", requestId: index });
  await waitFor(() => client.frames.length >= 5, "five replies");
  const kinds = client.frames.map((frame) => frame.type === "pong" ? "pong" : frame.payload.code);
  assert.deepEqual(kinds.slice(0, 3), ["pong", "pong", "pong"]);
  assert.ok(kinds.slice(3).every((kind) => kind === "rate_limited"), kinds.join(","));
  assert.equal(client.frames[4]!.requestId, 4);
});

Deno.test("a binary frame closes the connection with 1003", async () => {
  await using hub = startTestHub();
  await using client = await TestClient.connect(hub.wsUrl);
  client.socket.send(new Uint8Array([1, 2, 3]));
  const close = await client.closedPromise;
  assert.equal(close.code, 1003);
});

Deno.test("a message over 512 KiB closes the connection with 1009", async () => {
  await using hub = startTestHub();
  await using client = await TestClient.connect(hub.wsUrl);
  client.send(JSON.stringify({ type: "ping", requestId: "x".repeat(512 * 1024) }));
  const close = await client.closedPromise;
  assert.equal(close.code, 1009);
  await using small = await TestClient.connect(hub.wsUrl);
  const justUnder = "x".repeat(512 * 1024 - 60);
  const reply = await small.request({ type: "ping", requestId: "under", padding: justUnder });
  assert.equal(reply.type, "pong", "a message under the limit is answered");
});

Deno.test("the hub pings a silent connection and closes it when no pong comes", async () => {
  await using hub = startTestHub({ HERALD_PING_INTERVAL: "1" });
  // A real client answers pings by itself; the raw one never reads, so never answers.
  await using live = await TestClient.connect(hub.wsUrl);
  const { socket: raw } = await RawWebSocket.handshake(hub.port);
  const startedAt = Date.now();
  const first = await raw.readFrame();
  assert.equal(first?.opcode, 9, "the first frame on a silent connection is a ping");
  const { closeCode } = await raw.readUntilClose();
  const elapsed = Date.now() - startedAt;
  raw.close();
  assert.notEqual(closeCode, null);
  assert.ok(
    elapsed >= 400,
    `closed after ${elapsed} ms, expected about one interval after the ping`,
  );
  assert.equal(live.socket.readyState, WebSocket.OPEN, "a client that answers pings stays");
  assert.equal((await live.request({ type: "ping", requestId: "p" })).type, "pong");
});
