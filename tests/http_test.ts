/**
 * The HTTP side of the contract against a real hub: the publish API and its errors, the origin
 * check on upgrade, operational endpoints, ordering and idempotent retries.
 */
import assert from "node:assert/strict";
import { startTestHub, TEST_TOKEN, TestClient, waitFor } from "./_harness.ts";
import { RawWebSocket } from "./_raw_ws.ts";

async function errorOf(
  response: Response,
): Promise<{ code: string; message: string; index?: number }> {
  const body = await response.json();
  return body.error;
}

Deno.test("POST /events accepts one event or a batch and answers 202 with ids and seqs", async () => {
  await using hub = startTestHub();
  await using client = await TestClient.connect(hub.wsUrl);
  const single = await hub.publish({ type: "deploy.queued", appId: "web" });
  assert.equal(single.status, 202);
  const { accepted: [one] } = await single.json();
  assert.equal(typeof one.id, "string");
  assert.equal(typeof one.seq, "string");
  const batch = await hub.publish([
    { type: "deploy.step", appId: "web", payload: { step: "build", status: "building" } },
    {
      type: "deploy.step",
      appId: "web",
      payload: { step: "build", status: "done", durationMs: "1200" },
    },
    { type: "deploy.completed", appId: "web", id: "mine" },
  ]);
  assert.equal(batch.status, 202);
  const { accepted } = await batch.json();
  assert.equal(accepted.length, 3);
  assert.equal(accepted[2].id, "mine", "a producer-supplied id is kept");
  const events = await client.waitForEvents(4);
  assert.deepEqual(events.map((e) => e.id), [one.id, ...accepted.map((a: { id: string }) => a.id)]);
  assert.deepEqual(events.map((e) => e.seq), [
    one.seq,
    ...accepted.map((a: { seq: string }) => a.seq),
  ]);
});

Deno.test("a batch with one invalid event is rejected whole and nothing is published", async () => {
  await using hub = startTestHub();
  await using client = await TestClient.connect(hub.wsUrl);
  const response = await hub.publish([
    { type: "deploy.queued", appId: "web", id: "first" },
    { type: "deploy.rollback", appId: "web", payload: {} },
    { type: "deploy.completed", appId: "web" },
  ]);
  assert.equal(response.status, 400);
  const error = await errorOf(response);
  assert.equal(error.code, "bad_event");
  assert.equal(error.index, 1);
  assert.match(error.message, /imageTag/);
  await hub.publish({ type: "zz.marker", id: "marker" });
  const [event] = await client.waitForEvents(1);
  assert.equal(event!.id, "marker", "the rejected batch delivered nothing");
  const retry = await hub.publish({ type: "deploy.queued", appId: "web", id: "first" });
  const { accepted: [again] } = await retry.json();
  await client.waitForEvents(2);
  assert.equal(client.events[1]!.seq, again.seq, "the rejected event's id was not remembered");
});

Deno.test("publish errors: 401, 413, 415, bad_json, empty batch, bad events", async (t) => {
  await using hub = startTestHub({ HERALD_MAX_BATCH: "3", HERALD_MAX_BODY_BYTES: "4096" });
  const post = (body: string, headers: Record<string, string>) =>
    fetch(`${hub.url}/events`, { method: "POST", body, headers });
  const json = { "content-type": "application/json" };
  const auth = { authorization: `Bearer ${TEST_TOKEN}` };
  const event = JSON.stringify({ type: "deploy.queued" });

  await t.step("401 without a token or with a wrong one", async () => {
    for (const headers of [json, { ...json, authorization: "Bearer wrong-token-wrong-token" }]) {
      const response = await post(event, headers);
      assert.equal(response.status, 401);
      assert.equal(response.headers.get("www-authenticate"), 'Bearer realm="herald"');
      assert.equal((await errorOf(response)).code, "unauthorized");
    }
  });
  await t.step("415 when the body is not declared JSON", async () => {
    const response = await post(event, { ...auth, "content-type": "text/plain" });
    assert.equal(response.status, 415);
    assert.equal((await errorOf(response)).code, "unsupported_media_type");
  });
  await t.step("413 for a body over the limit and for a batch over the limit", async () => {
    const big = JSON.stringify({ type: "log.line", payload: { line: "x".repeat(5000) } });
    const tooLarge = await post(big, { ...auth, ...json });
    assert.equal(tooLarge.status, 413);
    assert.equal((await errorOf(tooLarge)).code, "body_too_large");
    const tooMany = await post(JSON.stringify(Array(4).fill({ type: "deploy.queued" })), {
      ...auth,
      ...json,
    });
    assert.equal(tooMany.status, 413);
    assert.equal((await errorOf(tooMany)).code, "batch_too_large");
  });
  await t.step("400 bad_json and empty batch", async () => {
    const badJson = await post("{nope", { ...auth, ...json });
    assert.equal(badJson.status, 400);
    assert.equal((await errorOf(badJson)).code, "bad_json");
    const empty = await post("[]", { ...auth, ...json });
    assert.equal(empty.status, 400);
    assert.equal((await errorOf(empty)).code, "bad_event");
  });
  await t.step("400 bad_event names the problem", async () => {
    const cases: [unknown, RegExp][] = [
      [{ type: "Deploy.queued" }, /type must be/],
      [{ type: "deploy" }, /type must be/],
      [{ type: "a." + "b".repeat(127) }, /at most 128/],
      [{ type: "deploy.queued", payload: [1] }, /payload must be a JSON object/],
      [{ type: "deploy.queued", seq: "1" }, /seq is assigned by the hub/],
      [{ type: "deploy.queued", color: "red" }, /unknown field "color"/],
      [{ type: "deploy.queued", appId: "" }, /appId/],
      [{ type: "deploy.step", payload: { step: "build" } }, /payload.status/],
      [
        { type: "deploy.step", payload: { step: "b", status: "s", durationMs: "fast" } },
        /durationMs/,
      ],
      [{ type: "health.check", payload: { healthy: "yes" } }, /healthy/],
      [{ type: "resource.status", payload: { resource: "db", status: "healthy" } }, /status/],
      [{ type: "forge.failed", payload: { step: "build" } }, /payload.error/],
      [{ type: "persona.created", payload: { namespace: "n" } }, /payload.name/],
      [
        { type: "validation.result", payload: { namespace: "n", name: "x", passed: true } },
        /issueCount/,
      ],
      [{ type: "deploy.queued", timestamp: "yesterday" }, /timestamp/],
      ["just a string", /JSON object/],
    ];
    for (const [body, pattern] of cases) {
      const response = await post(JSON.stringify(body), { ...auth, ...json });
      assert.equal(response.status, 400, JSON.stringify(body));
      const error = await errorOf(response);
      assert.equal(error.code, "bad_event");
      assert.equal(error.index, 0);
      assert.match(error.message, pattern, JSON.stringify(body));
    }
  });
  await t.step(
    "catalogued payload checks are lenient: extra fields and numeric strings pass",
    async () => {
      const response = await post(
        JSON.stringify([
          {
            type: "deploy.step",
            payload: { step: "b", status: "s", durationMs: "1500", extra: { a: 1 } },
          },
          { type: "resource.status", payload: { resource: "db", status: "DEGRADED" } },
          { type: "app.restarted" },
        ]),
        { ...auth, ...json },
      );
      assert.equal(response.status, 202);
      await response.body?.cancel();
      const unlisted = await post(
        JSON.stringify([
          { type: "session.recording.started" },
          { type: "custom.thing", payload: { anything: true } },
        ]),
        { ...auth, ...json },
      );
      assert.equal(unlisted.status, 202, "well-formed types outside the catalog pass");
      await unlisted.body?.cancel();
    },
  );
});

Deno.test("strict mode rejects types outside the catalog", async () => {
  await using hub = startTestHub({ HERALD_STRICT_EVENTS: "1" });
  const refused = await hub.publish({ type: "custom.thing" });
  assert.equal(refused.status, 400);
  assert.match((await errorOf(refused)).message, /not in the event catalog/);
  for (const type of ["deploy.queued", "session.anything.goes"]) {
    const accepted = await hub.publish({ type });
    assert.equal(accepted.status, 202, type);
    await accepted.body?.cancel();
  }
});

Deno.test("a retried id is answered with the original id and seq and delivered once", async () => {
  await using hub = startTestHub();
  await using client = await TestClient.connect(hub.wsUrl);
  const event = { type: "deploy.queued", appId: "web", id: "retry-me" };
  const first = await (await hub.publish(event)).json();
  const second = await (await hub.publish(event)).json();
  const inBatch =
    await (await hub.publish([event, { ...event, id: "other" }, { ...event, id: "other" }])).json();
  assert.deepEqual(second.accepted, first.accepted);
  assert.deepEqual(inBatch.accepted[0], first.accepted[0]);
  assert.deepEqual(
    inBatch.accepted[2],
    inBatch.accepted[1],
    "a duplicate within a batch is one event",
  );
  await hub.publish({ type: "zz.marker" });
  await client.waitForEvents(3);
  assert.deepEqual(client.events.map((e) => e.id).slice(0, 2), ["retry-me", "other"]);
  assert.equal(client.events[2]!.type, "zz.marker");
});

Deno.test("events from one producer reach every subscriber in publish order", async () => {
  await using hub = startTestHub();
  const clients = await Promise.all(
    Array.from({ length: 5 }, () => TestClient.connect(hub.wsUrl + "?topic=deploy.*&appId=web")),
  );
  const expected: number[] = [];
  for (let call = 0; call < 20; call++) {
    const batch = Array.from({ length: 10 }, (_, index) => {
      const n = call * 10 + index;
      expected.push(n);
      return { type: "deploy.step", appId: "web", payload: { step: `s${n}`, status: "ok", n } };
    });
    assert.equal((await hub.publish(batch)).status, 202);
  }
  for (const client of clients) {
    await client.waitForEvents(expected.length);
    assert.deepEqual(client.events.map((event) => event.payload.n), expected);
    await client.close();
  }
});

Deno.test("origin check on upgrade", async (t) => {
  await using hub = startTestHub({ HERALD_ALLOWED_ORIGINS: "https://dash.example.com" });
  const cases: [string | null, number][] = [
    [null, 101],
    ["https://dash.example.com", 101],
    ["http://localhost:3000", 101],
    ["http://127.0.0.1:5173", 101],
    ["http://[::1]:8080", 101],
    ["https://localhost", 101],
    ["https://evil.example.com", 403],
    ["https://dash.example.com.evil.net", 403],
    ["http://dash.example.com", 403],
    ["null", 403],
    ["http://localhost.evil.net", 403],
  ];
  for (const [origin, expected] of cases) {
    await t.step(`${origin ?? "no Origin"} -> ${expected}`, async () => {
      const headers: Record<string, string> = origin === null ? {} : { origin };
      const { status, socket } = await RawWebSocket.handshake(hub.port, "/ws", headers);
      socket.close();
      assert.equal(status, expected);
    });
  }
  await waitFor(() => hub.app.hub.clientCount === 0, "raw clients to be gone");
});

Deno.test("operational endpoints: health, ready, metrics, 404, 405 and 426", async () => {
  await using hub = startTestHub();
  await using client = await TestClient.connect(hub.wsUrl);
  await hub.publish({ type: "deploy.queued" });
  await client.waitForEvents(1);
  const health = await fetch(`${hub.url}/health`);
  assert.deepEqual([health.status, await health.json()], [200, { status: "ok" }]);
  const ready = await fetch(`${hub.url}/ready`);
  assert.equal(ready.status, 200);
  assert.equal((await ready.json()).status, "ready");
  const metrics = await fetch(`${hub.url}/metrics`);
  assert.match(metrics.headers.get("content-type") ?? "", /^text\/plain/);
  const text = await metrics.text();
  for (
    const line of [
      "herald_connections 1",
      "herald_subscriptions 1",
      "herald_events_published_total 1",
      "herald_events_delivered_total 1",
      'herald_connections_opened_total{transport="websocket"} 1',
      "herald_queue_depth 0",
    ]
  ) {
    assert.ok(text.includes(`\n${line}\n`), `metrics has ${line}`);
  }
  assert.match(text, /# TYPE herald_slow_consumer_disconnects_total counter/);
  const notFound = await fetch(`${hub.url}/nope`);
  assert.equal(notFound.status, 404);
  assert.equal((await errorOf(notFound)).code, "not_found");
  const wrongMethod = await fetch(`${hub.url}/events`);
  assert.equal(wrongMethod.status, 405);
  assert.equal(wrongMethod.headers.get("allow"), "POST");
  await wrongMethod.body?.cancel();
  const noUpgrade = await fetch(`${hub.url}/ws`);
  assert.equal(noUpgrade.status, 426);
  assert.equal((await errorOf(noUpgrade)).code, "upgrade_required");
});
