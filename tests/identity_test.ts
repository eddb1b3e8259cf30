/**
 * `HERALD_AUTH=token` and `jwt` against real hubs: who may connect, subscribe, publish and read;
 * tenants per credential and per event; the tokens file reloaded without restart; expiry,
 * `refresh` and 4001 on live connections; where credentials come from.
 * @module
 */

import assert from "node:assert/strict";
import { decodeJwt } from "jose";
import { readMetrics, TestClient, waitFor } from "./_harness.ts";
import { SseReader } from "./_sse.ts";
import {
  JWT_SECRET,
  publishAs,
  signJwt,
  startAuthHub,
  startExpiringJwtHub,
  type TokenEntry,
  tokensFile,
} from "./_identity.ts";

const ACME_DASH = "acme-dashboard-token-0001";
const ACME_CI = "acme-ci-token-000000000002";
const GLOBEX_DASH = "globex-dashboard-token-03";
const PLANE = "control-plane-token-00004";
const TOKENS: TokenEntry[] = [
  { token: ACME_DASH, tenant: "acme", name: "acme-dashboard", scopes: ["subscribe:*"] },
  {
    token: ACME_CI,
    tenant: "acme",
    name: "acme-ci",
    scopes: ["publish:deploy.*", "subscribe:deploy.*"],
  },
  { token: GLOBEX_DASH, tenant: "globex", name: "globex-dashboard", scopes: ["subscribe:*"] },
  { token: PLANE, tenant: "ops", name: "plane", scopes: ["publish:*", "tenants:*"] },
];

const step = (appId: string) => ({
  type: "deploy.step",
  appId,
  payload: { step: "build", status: "running" },
});

Deno.test("token mode: anonymous callers reach only /health, /ready and /metrics", async () => {
  await using file = await tokensFile(TOKENS);
  await using hub = await startAuthHub({ HERALD_AUTH: "token", HERALD_TOKENS_FILE: file.path });
  for (const path of ["/state", "/apps", "/history", "/apps/web", "/events/stream"]) {
    const response = await fetch(`${hub.url}${path}`);
    const body = await response.json();
    assert.equal(response.status, 401, path);
    assert.equal(body.error.code, "unauthorized");
    assert.equal(response.headers.get("www-authenticate"), 'Bearer realm="herald"');
  }
  const post = await hub.publish(step("web"), { authorization: "Bearer nope-nope-nope-nope" });
  assert.equal(post.status, 401);
  assert.ok(!(await post.text()).includes("nope-nope"), "the token is not echoed");
  const ws = new TestClient(hub.wsUrl);
  await assert.rejects(ws.opened);
  await ws.closedPromise;
  for (const path of ["/health", "/ready", "/metrics"]) {
    const response = await fetch(`${hub.url}${path}`);
    await response.body?.cancel();
    assert.equal(response.status, 200, path);
  }
});

Deno.test("token mode: each tenant receives only its own events; scopes bound subscribe, publish and reads", async () => {
  await using file = await tokensFile(TOKENS);
  await using hub = await startAuthHub({ HERALD_AUTH: "token", HERALD_TOKENS_FILE: file.path });
  await using acme = await TestClient.connect(`${hub.wsUrl}?token=${ACME_DASH}`);
  await using globex = await TestClient.connect(hub.wsUrl, {
    authorization: `Bearer ${GLOBEX_DASH}`,
  });
  // The CI credential may read deploy.* only: with no topic it gets exactly that.
  await using ci = await TestClient.connect(`${hub.wsUrl}?token=${ACME_CI}`);

  const accepted = await publishAs(hub, ACME_CI, [step("web"), step("api")]);
  assert.equal(accepted.status, 202);
  await acme.waitForEvents(2);
  await ci.waitForEvents(2);
  // globex subscribed to everything of its own tenant: a ping round trip after the publish
  // shows nothing of acme's is on its way.
  assert.deepEqual((await globex.request({ type: "ping", requestId: "p" })).type, "pong");
  assert.equal(globex.events.length, 0);

  const outside = await publishAs(hub, ACME_CI, { type: "persona.changed", appId: "web" });
  assert.equal(outside.status, 403);
  assert.equal((await outside.json()).error.code, "forbidden");
  const readerPublishes = await publishAs(hub, ACME_DASH, step("web"));
  assert.equal(readerPublishes.status, 403);

  const refused = await ci.request({ type: "subscribe", topic: "*", requestId: "s" });
  assert.equal(refused.payload.code, "forbidden");
  const byQuery = await fetch(`${hub.url}/ws?token=${ACME_CI}&topic=persona.*`, {
    headers: {
      upgrade: "websocket",
      connection: "upgrade",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      "sec-websocket-version": "13",
    },
  });
  assert.equal(byQuery.status, 403);
  await byQuery.body?.cancel();

  const ciState = await fetch(`${hub.url}/state`, {
    headers: { authorization: `Bearer ${ACME_CI}` },
  });
  assert.equal(ciState.status, 403);
  await ciState.body?.cancel();
  const ciRequest = await ci.request({ type: "request", topic: "apps", requestId: "r" });
  assert.equal(ciRequest.payload.code, "forbidden");

  const acmeApps = await (await fetch(`${hub.url}/apps?token=${ACME_DASH}`)).json();
  const globexApps = await (await fetch(`${hub.url}/apps?token=${GLOBEX_DASH}`)).json();
  assert.ok(JSON.stringify(acmeApps).includes("web"));
  assert.ok(!JSON.stringify(globexApps).includes("web"), "globex sees no acme app");
  const history = await (await fetch(`${hub.url}/history?token=${GLOBEX_DASH}`)).json();
  assert.equal(history.events.length, 0);
});

Deno.test("token mode: only tenants:* names the tenant of each event", async () => {
  await using file = await tokensFile(TOKENS);
  await using hub = await startAuthHub({ HERALD_AUTH: "token", HERALD_TOKENS_FILE: file.path });
  await using acme = await TestClient.connect(`${hub.wsUrl}?token=${ACME_DASH}`);
  await using globex = await TestClient.connect(`${hub.wsUrl}?token=${GLOBEX_DASH}`);
  const response = await publishAs(hub, PLANE, [
    { ...step("a"), tenant: "acme" },
    { ...step("g"), tenant: "globex" },
    { ...step("a2"), tenant: "acme" },
  ]);
  assert.equal(response.status, 202);
  const { accepted } = await response.json();
  assert.equal(accepted.length, 3);
  const acmeEvents = await acme.waitForEvents(2);
  const globexEvents = await globex.waitForEvents(1);
  assert.deepEqual(acmeEvents.map((event) => event.appId), ["a", "a2"]);
  assert.deepEqual(globexEvents.map((event) => event.appId), ["g"]);
  assert.ok(acmeEvents.every((event) => !("tenant" in event)), "the tenant stays on the server");

  const smuggled = await publishAs(hub, ACME_CI, { ...step("x"), tenant: "globex" });
  assert.equal(smuggled.status, 400);
  assert.match((await smuggled.json()).error.message, /unknown field "tenant"/);
  const badName = await publishAs(hub, PLANE, { ...step("x"), tenant: "no such:tenant" });
  assert.equal(badName.status, 400);
  assert.equal(globex.events.length, 1);
});

Deno.test("token mode: the tokens file reloads on change and on SIGHUP; a bad file keeps the previous tokens", async () => {
  await using file = await tokensFile(TOKENS);
  await using hub = await startAuthHub({ HERALD_AUTH: "token", HERALD_TOKENS_FILE: file.path });
  const status = async (token: string) => {
    const response = await fetch(`${hub.url}/apps`, {
      headers: { authorization: `Bearer ${token}` },
    });
    await response.body?.cancel();
    return response.status;
  };
  const rotated = "acme-dashboard-token-ROTATED";
  await file.writeTokens([{ ...TOKENS[0]!, token: rotated }, ...TOKENS.slice(1)]);
  await waitFor(async () => (await status(rotated)) === 200 || null, "the new token to work");
  assert.equal(await status(ACME_DASH), 401, "the rotated-out token is refused");

  const reloads = async (outcome: string) =>
    (await readMetrics(hub.url)).get(`herald_tokens_file_reloads_total{outcome="${outcome}"}`) ?? 0;
  await file.write("{ not json");
  await waitFor(async () => (await reloads("failed")) >= 1 || null, "the bad file to be read");
  assert.equal(await status(rotated), 200, "a bad file keeps the previous tokens");
  await file.write(JSON.stringify({ tokens: [{ token: "short", tenant: "acme" }] }));
  await waitFor(async () => (await reloads("failed")) >= 2 || null, "the invalid file to be read");
  assert.equal(await status(rotated), 200);

  // SIGHUP reloads even when no change was seen.
  await Deno.writeTextFile(file.path, JSON.stringify({ tokens: TOKENS }));
  const before = await reloads("ok");
  Deno.kill(Deno.pid, "SIGHUP");
  await waitFor(async () => (await reloads("ok")) > before || null, "the reload on SIGHUP");
  await waitFor(async () => (await status(ACME_DASH)) === 200 || null, "the original tokens");
  assert.equal(await status(rotated), 401);
});

Deno.test("credentials: the bearer.<token> subprotocol is accepted and echoed; a wrong one is refused", async () => {
  await using file = await tokensFile(TOKENS);
  await using hub = await startAuthHub({ HERALD_AUTH: "token", HERALD_TOKENS_FILE: file.path });
  const socket = new WebSocket(hub.wsUrl, ["herald", `bearer.${ACME_DASH}`]);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = reject;
  });
  assert.equal(socket.protocol, `bearer.${ACME_DASH}`);
  const closed = new Promise((resolve) => (socket.onclose = resolve));
  socket.close();
  await closed;
  const wrong = new WebSocket(hub.wsUrl, ["bearer.wrong-token-0123456789"]);
  const outcome = await new Promise((resolve) => {
    wrong.onopen = () => resolve("open");
    wrong.onerror = () => resolve("refused");
  });
  assert.equal(outcome, "refused");
});

Deno.test("jwt mode: an expiring connection is warned, then closed with 4001 unless it refreshes; SSE ends with a close event", async () => {
  await using hub = await startExpiringJwtHub(1);
  const claims = { sub: "alice", tenant: "acme", scope: "subscribe:*" };
  const short = await signJwt(claims, { expiresInSeconds: 2 });
  await using expiring = await TestClient.connect(`${hub.wsUrl}?token=${short}`);
  await using refreshing = await TestClient.connect(`${hub.wsUrl}?token=${short}`);
  await using sse = await SseReader.open(`${hub.url}/events/stream?token=${short}`);
  assert.equal(sse.response.status, 200);

  await refreshing.waitForFrame((frame) => frame.payload?.code === "token_expiring", "warning");
  const later = await signJwt(claims, { expiresInSeconds: 3600 });
  const refreshed = await refreshing.request({ type: "refresh", token: later, requestId: "r" });
  assert.equal(refreshed.payload.status, "refreshed");
  const otherTenant = await signJwt({ ...claims, tenant: "globex" });
  const moved = await refreshing.request({ type: "refresh", token: otherTenant, requestId: "m" });
  assert.equal(moved.payload.code, "forbidden");

  const close = await expiring.closedPromise;
  assert.equal(close.code, 4001);
  assert.ok(expiring.frames.some((frame) => frame.payload?.code === "token_expiring"));
  const final = await waitFor(
    () => sse.messages.find((message) => message.event === "close"),
    "the SSE close event",
  );
  assert.equal(final.data.code, 4001);
  // Past the first token's expiry, the refreshed connection is still open and answers.
  assert.equal((await refreshing.request({ type: "ping", requestId: "p" })).type, "pong");
  assert.equal(refreshing.closeEvent, null);
});

Deno.test("jwt mode: an SSE stream is warned once before its token expires, then resumes with a new token via Last-Event-ID without loss", async () => {
  await using hub = await startExpiringJwtHub(3);
  const claims = { sub: "dash", tenant: "acme", scope: "subscribe:*" };
  const publisher = await signJwt({ sub: "ci", tenant: "acme", scope: "publish:*" });
  const publish = async (appId: string) =>
    assert.equal((await publishAs(hub, publisher, step(appId))).status, 202);
  const stream = (token: string, headers: Record<string, string> = {}) =>
    SseReader.open(`${hub.url}/events/stream?token=${token}`, headers);
  const at = (reader: SseReader, appId: string) =>
    reader.messages.findIndex((message) => message.data?.appId === appId);
  const warningsOf = (reader: SseReader) =>
    reader.messages.filter((message) => message.event === "token_expiring");

  // 6-7 s left: outside the 3 s window. 2-3 s left: inside it from the start.
  const later = await signJwt(claims, { expiresInSeconds: 7 });
  const soon = await signJwt(claims, { expiresInSeconds: 3 });
  await using outside = await stream(later);
  await using inside = await stream(soon);
  await publish("one");
  await waitFor(() => at(outside, "one") >= 0 && at(inside, "one") >= 0, "event one on both");
  const early = await waitFor(() => warningsOf(inside)[0], "the warning at once");
  assert.ok(inside.messages.indexOf(early) < at(inside, "one"), "warned before any later event");
  assert.deepEqual(warningsOf(outside), [], "no warning outside the window");

  const warning = await waitFor(() => warningsOf(outside)[0], "the warning", 15_000);
  assert.equal(warning.id, null);
  assert.equal(warning.data.type, "error");
  assert.equal(warning.data.payload.code, "token_expiring");
  assert.match(warning.data.payload.message, /reconnect with a new token/);
  assert.equal(
    warning.data.payload.expiresAt,
    new Date(decodeJwt(later).exp! * 1000).toISOString(),
  );
  // Still open after the warning: events keep coming until the close.
  await publish("two");
  await waitFor(() => at(outside, "two") >= 0, "event two after the warning");
  const close = await waitFor(
    () => outside.messages.find((message) => message.event === "close"),
    "the close event",
    15_000,
  );
  assert.equal(close.data.code, 4001);
  assert.ok(outside.messages.indexOf(warning) < outside.messages.indexOf(close));
  assert.equal(warningsOf(outside).length, 1, "warned once");
  assert.equal(warningsOf(inside).length, 1, "warned once");

  // Published while no stream is open; the new token's stream resumes from the last id seen.
  await publish("three");
  const lastSeen = outside.events.at(-1)!.id!;
  await using resumed = await stream(await signJwt(claims), { "last-event-id": lastSeen });
  assert.equal(resumed.response.status, 200);
  await publish("four");
  const events = await resumed.waitForEvents(2);
  assert.deepEqual(events.map((event) => event.data.appId), ["three", "four"]);
  assert.deepEqual(outside.events.map((event) => event.data.appId), ["one", "two"]);
});

Deno.test("jwt mode: tenant and scopes come from the claims; bad tokens get 401 without the token", async () => {
  await using hub = await startAuthHub({
    HERALD_AUTH: "jwt",
    HERALD_JWT_SECRET: JWT_SECRET,
    HERALD_JWT_AUDIENCE: "herald",
    HERALD_JWT_ISSUER: "https://id.example",
  });
  const base = { aud: "herald", iss: "https://id.example" };
  const reader = await signJwt({
    ...base,
    sub: "dash",
    tenant: "acme",
    scope: "openid subscribe:*",
  });
  const ci = await signJwt({ ...base, sub: "ci", tenant: "acme", scope: "publish:deploy.*" });
  await using acme = await TestClient.connect(`${hub.wsUrl}?token=${reader}`);
  assert.equal((await publishAs(hub, ci, step("web"))).status, 202);
  await acme.waitForEvents(1);

  const wrong = [
    await signJwt({ ...base, sub: "x", tenant: "acme" }, { expiresInSeconds: -120 }),
    await signJwt({ sub: "x", tenant: "acme", aud: "other", iss: base.iss }),
    await signJwt({ ...base, sub: "x", tenant: "acme" }, {
      secret: "another-secret-0123456789abcdefgh",
    }),
    await signJwt({ ...base, sub: "x", tenant: "bad:tenant" }),
    "not.a.jwt",
  ];
  for (const token of wrong) {
    const response = await fetch(`${hub.url}/apps`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const text = await response.text();
    assert.equal(response.status, 401, text);
    assert.ok(!text.includes(token), "the token is not echoed");
  }
});
