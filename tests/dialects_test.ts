/**
 * Dialects against a real hub: dorgu's CLI (bare topics, its reply and event shapes, the
 * namespace filter, addons as names, `request personas|cluster`) and StreamSpace's clients
 * (`?user_id=`, `?session_id=`, `{type, sessionId, userId, timestamp, data}`), next to Norn's
 * and Herald's own clients on the same hub, live and on resume.
 */

import assert from "node:assert/strict";
import { SseReader } from "./_sse.ts";
import { type Frame, openTestHub, publishSeqs, TestClient, type TestHub } from "./_harness.ts";

/** dorgu's CLI subscribe, exactly as it sends it (`dorgu watch personas`). */
const DORGU_SUBSCRIBE_PERSONAS =
  '{"type":"subscribe","topic":"personas","requestId":"1796272139903631786","timestamp":"2026-12-03T04:28:59.90363421Z"}';

const ISO = "\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{3}Z";

/** A WebSocket client that also keeps every frame's text, for byte-for-byte checks. */
async function rawClient(url: string): Promise<TestClient & { texts: string[] }> {
  const client = new TestClient(url) as TestClient & { texts: string[] };
  client.texts = [];
  client.socket.addEventListener("message", (event) => client.texts.push(event.data as string));
  await client.opened;
  return client;
}

const personaUpdated = {
  type: "persona.updated",
  payload: { namespace: "production", name: "nginx", phase: "Degraded", health: "Unhealthy" },
};
/** `personaUpdated` as dorgu's `personas` subscribers read its payload. */
const NGINX_DEGRADED = {
  eventType: "updated",
  namespace: "production",
  name: "nginx",
  phase: "Degraded",
  health: "Unhealthy",
};
const personaStaging = {
  type: "persona.created",
  payload: { namespace: "staging", name: "api", phase: "Pending" },
};
const deployStep = {
  type: "deploy.step",
  appId: "web",
  namespace: "production",
  payload: { step: "build", status: "building" },
};
const logLine = { type: "log.line", appId: "web", payload: { line: "hello" } };

async function withHub(run: (hub: TestHub) => Promise<void>): Promise<void> {
  await using hub = await openTestHub();
  await run(hub);
}

/** The reply to `requestId` among `texts` is dorgu's operator shape for `personas`, exactly. */
function assertDorguReply(texts: string[], requestId: string, status: string): void {
  const reply = texts.find((text) => text.includes(`"requestId":"${requestId}"`));
  assert.match(
    reply ?? "(none)",
    new RegExp(
      `^\\{"type":"response","topic":"personas","requestId":"${requestId}",` +
        `"payload":\\{"status":"${status}","topic":"personas"\\},"timestamp":"${ISO}"\\}$`,
    ),
  );
}

Deno.test("dorgu: the subscribe reply is the operator's shape, byte for byte", () =>
  withHub(async (hub) => {
    await using dorgu = await rawClient(hub.wsUrl);
    dorgu.send(DORGU_SUBSCRIBE_PERSONAS);
    await dorgu.reply("1796272139903631786");
    assertDorguReply(dorgu.texts, "1796272139903631786", "subscribed");
    dorgu.send('{"type":"unsubscribe","topic":"personas","requestId":"2"}');
    await dorgu.reply("2");
    assertDorguReply(dorgu.texts, "2", "unsubscribed");
  }));

Deno.test("dorgu: events of the mapped types arrive in dorgu's shape, and nothing else", () =>
  withHub(async (hub) => {
    await using dorgu = await rawClient(hub.wsUrl);
    await dorgu.request({ type: "subscribe", topic: "personas", requestId: "p" });
    await dorgu.request({ type: "subscribe", topic: "deployments", requestId: "d" });
    const [, , , last] = await publishSeqs(hub, [personaUpdated, logLine, deployStep, {
      type: "persona.deleted",
      payload: { namespace: "production", name: "nginx" },
    }]);
    await dorgu.waitForFrame((frame) => frame.seq === last, "the last event");
    const events = dorgu.frames.filter((frame) => frame.type !== "response");
    assert.deepEqual(events.map(({ seq: _, timestamp: __, ...rest }) => rest), [
      {
        type: "event",
        topic: "personas",
        payload: NGINX_DEGRADED,
      },
      {
        type: "event",
        topic: "deployments",
        payload: {
          eventType: "step",
          namespace: "production",
          name: "web",
          phase: "building",
          step: "build",
        },
      },
      {
        type: "event",
        topic: "personas",
        payload: { eventType: "deleted", namespace: "production", name: "nginx" },
      },
    ]);
    for (const frame of events) assert.match(frame.timestamp, new RegExp(`^${ISO}$`));
    const text = dorgu.texts.find((text) => text.includes('"eventType":"updated"'))!;
    assert.ok(text.startsWith('{"type":"event","topic":"personas","payload":{"eventType"'), text);
  }));

Deno.test("dorgu: the namespace in the subscribe's payload filters", () =>
  withHub(async (hub) => {
    await using dorgu = await TestClient.connect(hub.wsUrl);
    await dorgu.request({
      type: "subscribe",
      topic: "personas",
      requestId: "1",
      payload: { namespace: "production" },
    });
    const [first, last] = await publishSeqs(hub, [personaStaging, personaUpdated]);
    const [event] = await dorgu.waitForEvents(1);
    assert.equal(event!.seq, last);
    assert.equal(dorgu.events.length, 1);
    assert.equal(event!.payload.namespace, "production");
    // The same filter on resume: of the two events after the cursor, one is replayed.
    await using resumed = await TestClient.connect(hub.wsUrl);
    const reply = await resumed.request({
      type: "subscribe",
      topic: "personas",
      requestId: "2",
      payload: { namespace: "staging" },
      since: `${first!.split("-")[0]}-0`,
    });
    assert.deepEqual([reply.payload.recovered, reply.payload.replayed], [true, 1]);
    const [replayed] = await resumed.waitForEvents(1);
    assert.deepEqual([replayed!.seq, replayed!.payload.name], [first, "api"]);
  }));

Deno.test("mixed hub: Norn, Herald and dorgu clients each get their own shape of the same events", () =>
  withHub(async (hub) => {
    await using norn = await TestClient.connect(hub.wsUrl); // sends nothing: implicit *
    await using native = await TestClient.connect(hub.wsUrl);
    await native.request({ type: "subscribe", topic: "persona.*", requestId: "n" });
    await using dorgu = await TestClient.connect(hub.wsUrl);
    dorgu.send(DORGU_SUBSCRIBE_PERSONAS);
    await dorgu.reply("1796272139903631786");
    const [persona, log] = await publishSeqs(hub, [personaUpdated, logLine]);
    await norn.waitForEvents(2);
    await native.waitForEvents(1);
    await dorgu.waitForEvents(1);
    const nornFrame = norn.events[0]!;
    assert.deepEqual(Object.keys(nornFrame), ["type", "payload", "id", "seq", "timestamp"]);
    assert.deepEqual([nornFrame.type, norn.events[1]!.seq], ["persona.updated", log]);
    assert.deepEqual(native.events[0], nornFrame, "Norn and native clients read the same frame");
    assert.deepEqual(dorgu.events[0], {
      type: "event",
      topic: "personas",
      payload: NGINX_DEGRADED,
      timestamp: nornFrame.timestamp,
      seq: persona,
    });
    // Nothing more reached the dorgu or native client (the log line was published in the same
    // call, after the persona, and reached Norn's client).
    assert.equal(native.events.length, 1);
    assert.equal(dorgu.events.length, 1);
  }));

Deno.test("dorgu: cluster addons are names in frames and in request cluster; state keeps them", () =>
  withHub(async (hub) => {
    await using dorgu = await TestClient.connect(hub.wsUrl);
    await dorgu.request({ type: "subscribe", topic: "cluster", requestId: "c" });
    const addons = [
      { name: "argocd", version: "2.11" },
      "prometheus",
      { name: "cert-manager", namespace: "cert-manager" },
    ];
    await publishSeqs(hub, {
      type: "cluster.updated",
      payload: { name: "prod-eu", phase: "Ready", nodeCount: 3, applicationCount: 12, addons },
    });
    const [event] = await dorgu.waitForEvents(1);
    assert.deepEqual(event!.payload, {
      eventType: "updated",
      name: "prod-eu",
      phase: "Ready",
      nodeCount: 3,
      applicationCount: 12,
      addons: ["argocd", "prometheus", "cert-manager"],
    });
    const cluster = await dorgu.request({
      type: "request",
      topic: "cluster",
      requestId: "info",
      payload: { name: "prod-eu" },
    });
    assert.deepEqual(cluster.payload.addons, ["argocd", "prometheus", "cert-manager"]);
    assert.equal(cluster.payload.nodeCount, 3);
    const state = await dorgu.request({ type: "request", topic: "state", requestId: "s" });
    assert.deepEqual(state.payload.clusters[0].addons, addons, "stored as published");
  }));

Deno.test("dorgu: request personas with a namespace keeps working", () =>
  withHub(async (hub) => {
    await using dorgu = await TestClient.connect(hub.wsUrl);
    await publishSeqs(hub, [personaUpdated, personaStaging]);
    const answer = await dorgu.request({
      type: "request",
      topic: "personas",
      requestId: "3",
      payload: { namespace: "production" },
    });
    assert.deepEqual(
      answer.payload.personas.map((p: Frame) => [p.namespace, p.name, p.phase, p.health]),
      [["production", "nginx", "Degraded", "Unhealthy"]],
    );
  }));

const sessionEvents = [
  {
    type: "session.created",
    userId: "user1",
    sessionId: "user1-firefox",
    payload: { image: "firefox", state: "pending" },
  },
  { type: "session.updated", userId: "user1", sessionId: "user1-chrome", payload: { n: 2 } },
  { type: "session.deleted", userId: "user2", sessionId: "user2-gimp", payload: {} },
];

Deno.test("streamspace: ?user_id= and ?session_id= get their sessions' events in StreamSpace's shape", () =>
  withHub(async (hub) => {
    await using user1 = await rawClient(`${hub.wsUrl}?user_id=user1`);
    await using session = await TestClient.connect(`${hub.wsUrl}?session_id=user1-firefox`);
    await using user2 = await TestClient.connect(`${hub.wsUrl}?user_id=user2`);
    await using native = await TestClient.connect(hub.wsUrl);
    await native.request({
      type: "subscribe",
      topic: "session.*",
      requestId: "1",
      filter: { userId: "user1" },
    });
    const [created, updated, deleted] = await publishSeqs(hub, sessionEvents);
    await user1.waitForEvents(2);
    await user2.waitForEvents(1);
    await session.waitForEvents(1);
    await native.waitForEvents(2);
    assert.match(
      user1.texts[0]!,
      new RegExp(
        '^\\{"type":"session.created","sessionId":"user1-firefox","userId":"user1",' +
          `"timestamp":"${ISO}","data":\\{"image":"firefox","state":"pending"\\},"seq":"${created!}"\\}$`,
      ),
    );
    assert.deepEqual(user1.events.map((frame) => frame.seq), [created, updated]);
    assert.deepEqual(session.events.map((frame) => [frame.type, frame.seq]), [
      ["session.created", created],
    ]);
    assert.deepEqual(user2.events.map((frame) => [frame.userId, frame.data, frame.seq]), [
      ["user2", {}, deleted],
    ]);
    // A Herald-native subscription filtered by user keeps Herald's frame, with the new fields.
    assert.deepEqual(native.events.map((frame) => [frame.userId, frame.sessionId, frame.seq]), [
      ["user1", "user1-firefox", created],
      ["user1", "user1-chrome", updated],
    ]);
    assert.deepEqual(native.events[0]!.payload, sessionEvents[0]!.payload);
    // History filters on them too, and keeps them in the stored frames.
    const history = await (await fetch(`${hub.url}/history?userId=user1`)).json();
    assert.deepEqual(history.events.map((event: Frame) => [event.sessionId, event.seq]), [
      ["user1-firefox", created],
      ["user1-chrome", updated],
    ]);
  }));

Deno.test("streamspace: a bad user_id or both spellings is 400 and opens nothing", () =>
  withHub(async (hub) => {
    for (const query of ["user_id=", "user_id=a&userId=b"]) {
      const response = await fetch(`${hub.url}/ws?${query}`, {
        headers: {
          upgrade: "websocket",
          connection: "Upgrade",
          "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
          "sec-websocket-version": "13",
        },
      });
      const body = await response.json();
      assert.equal(response.status, 400, query);
      assert.equal(body.error.code, "bad_request");
    }
    assert.equal(hub.app.hub.clientCount, 0);
  }));

Deno.test("resume in a dialect: dorgu and StreamSpace clients get their own shape replayed", () =>
  withHub(async (hub) => {
    const [first] = await publishSeqs(hub, [sessionEvents[0], personaStaging]);
    const [, persona, session] = await publishSeqs(hub, [
      logLine,
      personaUpdated,
      sessionEvents[1],
    ]);
    await using dorgu = await rawClient(hub.wsUrl);
    dorgu.send({ type: "subscribe", topic: "personas", requestId: "r", since: first });
    const reply = await dorgu.reply("r");
    assert.deepEqual(reply.payload, {
      status: "subscribed",
      topic: "personas",
      recovered: true,
      replayed: 2,
    });
    assert.match(reply.timestamp, new RegExp(`^${ISO}$`));
    const replayed = await dorgu.waitForEvents(2);
    assert.deepEqual(replayed.map((frame) => [frame.type, frame.topic, frame.payload.name]), [
      ["event", "personas", "api"],
      ["event", "personas", "nginx"],
    ]);
    assert.equal(replayed[1]!.seq, persona);

    await using streamspace = await TestClient.connect(
      `${hub.wsUrl}?user_id=user1&since=${first}`,
    );
    const [event] = await streamspace.waitForEvents(1);
    assert.deepEqual(Object.keys(event!), [
      "type",
      "sessionId",
      "userId",
      "timestamp",
      "data",
      "seq",
    ]);
    assert.deepEqual([event!.type, event!.sessionId, event!.seq], [
      "session.updated",
      "user1-chrome",
      session,
    ]);
    // Live after the replay, in the same shape.
    const [live] = await publishSeqs(hub, { ...sessionEvents[0], type: "session.state.changed" });
    await streamspace.waitForFrame((frame) => frame.seq === live, "the live event");
    assert.equal(streamspace.events.at(-1)!.data.image, "firefox");
  }));

Deno.test("streamspace: /events/stream?session_id= streams StreamSpace frames, resumable by Last-Event-ID", () =>
  withHub(async (hub) => {
    const [created, updated] = await publishSeqs(hub, [
      sessionEvents[0],
      { ...sessionEvents[0], type: "session.updated", payload: { state: "running" } },
      sessionEvents[2],
    ]);
    const stream = await SseReader.open(`${hub.url}/events/stream?session_id=user1-firefox`, {
      "last-event-id": created!,
    });
    try {
      const [event] = await stream.waitForEvents(1);
      assert.deepEqual([event!.event, event!.id], ["session.updated", updated]);
      assert.deepEqual(event!.data, {
        type: "session.updated",
        sessionId: "user1-firefox",
        userId: "user1",
        timestamp: event!.data.timestamp,
        data: { state: "running" },
        seq: updated,
      });
    } finally {
      await stream.close();
    }
  }));

Deno.test("resume in a dialect from a durable (KV) history: user and session survive the store", async () => {
  const dir = await Deno.makeTempDir({ prefix: "herald-kv-" });
  try {
    await using hub = await openTestHub({
      HERALD_HISTORY: "kv",
      HERALD_KV_PATH: `${dir}/history.sqlite`,
    });
    const [first, second] = await publishSeqs(hub, sessionEvents);
    await using user1 = await TestClient.connect(`${hub.wsUrl}?user_id=user1&since=${first}`);
    const [event] = await user1.waitForEvents(1);
    assert.deepEqual([event!.type, event!.userId, event!.sessionId, event!.data, event!.seq], [
      "session.updated",
      "user1",
      "user1-chrome",
      { n: 2 },
      second,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
