/**
 * Limits per credential, tenant and client IP against real hubs: publish rate (429 with
 * Retry-After, `rate_limited`), connections per tenant, connection attempts per IP, and
 * `X-Forwarded-For` counted only from a trusted proxy. Each refusal is counted in /metrics.
 * @module
 */

import assert from "node:assert/strict";
import { readMetrics, TestClient, waitFor } from "./_harness.ts";
import { publishAs, startAuthHub, type TokenEntry, tokensFile } from "./_identity.ts";

const CI = "acme-ci-token-000000000001";
const OTHER_CI = "acme-ci-token-000000000002";
const GLOBEX = "globex-token-0000000000003";
const TOKENS: TokenEntry[] = [
  { token: CI, tenant: "acme", name: "ci", scopes: ["publish:*", "subscribe:*"] },
  { token: OTHER_CI, tenant: "acme", name: "ci-2", scopes: ["publish:*"] },
  { token: GLOBEX, tenant: "globex", name: "dash", scopes: ["subscribe:*"] },
];
const event = { type: "deploy.queued", appId: "web" };

/** Opens a WebSocket and resolves with the upgrade's HTTP status (101 when it opened). */
async function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  const response = await fetch(url.replace("ws://", "http://"), {
    headers: {
      upgrade: "websocket",
      connection: "upgrade",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      "sec-websocket-version": "13",
      ...headers,
    },
  });
  await response.body?.cancel();
  return response.status;
}

Deno.test("limits: publish rate per credential: 429 with Retry-After over HTTP, rate_limited over WebSocket", async () => {
  await using file = await tokensFile(TOKENS);
  await using hub = await startAuthHub({
    HERALD_AUTH: "token",
    HERALD_TOKENS_FILE: file.path,
    HERALD_PUBLISH_RATE: "1",
    HERALD_PUBLISH_BURST: "2",
  });
  assert.equal((await publishAs(hub, CI, event)).status, 202);
  assert.equal((await publishAs(hub, CI, event)).status, 202);
  const limited = await publishAs(hub, CI, event);
  assert.equal(limited.status, 429);
  assert.equal((await limited.json()).error.code, "rate_limited");
  assert.ok(Number(limited.headers.get("retry-after")) >= 1);
  assert.equal((await publishAs(hub, OTHER_CI, event)).status, 202, "another credential");

  // The same credential over a WebSocket shares the bucket.
  await using socket = await TestClient.connect(`${hub.wsUrl}?token=${CI}`);
  const reply = await socket.request({ type: "publish", event, requestId: "p" });
  assert.equal(reply.payload.code, "rate_limited");
  const metrics = await readMetrics(hub.url);
  assert.equal(metrics.get('herald_limit_refusals_total{limit="publish_rate"}'), 2);
});

Deno.test("limits: connections per tenant on this node", async () => {
  await using file = await tokensFile(TOKENS);
  await using hub = await startAuthHub({
    HERALD_AUTH: "token",
    HERALD_TOKENS_FILE: file.path,
    HERALD_MAX_CONNECTIONS_PER_TENANT: "1",
  });
  await using first = await TestClient.connect(`${hub.wsUrl}?token=${CI}`);
  assert.equal(await upgradeStatus(`${hub.wsUrl}?token=${OTHER_CI}`), 429);
  const sse = await fetch(`${hub.url}/events/stream?token=${CI}`);
  assert.equal(sse.status, 429);
  await sse.body?.cancel();
  await using _globex = await TestClient.connect(`${hub.wsUrl}?token=${GLOBEX}`);
  await first.close();
  // The slot is released when the server sees the close.
  await using _again = await waitFor(
    () => TestClient.connect(`${hub.wsUrl}?token=${OTHER_CI}`).catch(() => null),
    "a slot after the first connection closed",
  );
  const metrics = await readMetrics(hub.url);
  assert.ok(metrics.get('herald_limit_refusals_total{limit="connections_per_tenant"}')! >= 2);
});

Deno.test("limits: connection attempts per IP, refused before authentication", async () => {
  await using hub = await startAuthHub({ HERALD_UPGRADE_RATE: "1", HERALD_UPGRADE_BURST: "2" });
  assert.equal(await upgradeStatus(`${hub.wsUrl}?token=wrong-token-0123456789`), 401);
  assert.equal(await upgradeStatus(hub.wsUrl), 101);
  const response = await fetch(`${hub.url}/events/stream`);
  assert.equal(response.status, 429);
  assert.ok(Number(response.headers.get("retry-after")) >= 1);
  assert.equal((await response.json()).error.code, "rate_limited");
  const metrics = await readMetrics(hub.url);
  assert.equal(metrics.get('herald_limit_refusals_total{limit="upgrade_rate"}'), 1);
});

Deno.test("limits: X-Forwarded-For names the client only behind a trusted proxy", async () => {
  const perIp = { HERALD_MAX_CONNECTIONS_PER_IP: "1" };
  {
    await using hub = await startAuthHub({ ...perIp, HERALD_TRUSTED_PROXIES: "127.0.0.1" });
    await using _a = await TestClient.connect(hub.wsUrl, { "x-forwarded-for": "203.0.113.1" });
    await using _b = await TestClient.connect(hub.wsUrl, { "x-forwarded-for": "203.0.113.2" });
    const same = await upgradeStatus(hub.wsUrl, { "x-forwarded-for": "198.51.100.7, 203.0.113.1" });
    assert.equal(same, 429, "the right-most untrusted hop is the client");
  }
  {
    await using hub = await startAuthHub(perIp);
    await using _a = await TestClient.connect(hub.wsUrl, { "x-forwarded-for": "203.0.113.1" });
    const spoofed = await upgradeStatus(hub.wsUrl, { "x-forwarded-for": "203.0.113.2" });
    assert.equal(spoofed, 429, "an untrusted peer's header does not count");
  }
});
