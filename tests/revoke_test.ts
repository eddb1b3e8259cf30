/**
 * Revocation on live connections: a `HERALD_AUTH=token` hub (a real `deno run main.ts`) whose
 * tokens file loses a token, by a rewrite or on SIGHUP, closes that token's WebSocket, SSE and
 * agent connections with 4001 at once; a token still present whose tenant or scopes changed is
 * rechecked against its new entry; every other connection keeps receiving.
 * @module
 */

import assert from "node:assert/strict";
import { type HubProcess, readMetrics, spawnHub, TestClient, waitFor } from "./_harness.ts";
import { SseReader } from "./_sse.ts";
import { type TokenEntry, tokensFile } from "./_identity.ts";
import { register } from "./_agents.ts";

const READER_A = "reader-a-token-0000000001";
const READER_B = "reader-b-token-0000000002";
const PUBLISHER = "publisher-token-000000003";
const AGENT_A = "agent-a-token-00000000004";
const AGENT_B = "agent-b-token-00000000005";
const reader = (token: string, name: string): TokenEntry => ({
  token,
  tenant: "acme",
  name,
  scopes: ["subscribe:*"],
});
const BASE: TokenEntry[] = [
  reader(READER_A, "reader-a"),
  reader(READER_B, "reader-b"),
  { token: PUBLISHER, tenant: "acme", name: "ci", scopes: ["publish:*"] },
  { token: AGENT_A, tenant: "acme", name: "agent-a", scopes: ["agent"] },
  { token: AGENT_B, tenant: "acme", name: "agent-b", scopes: ["agent"] },
];
const REVOKED = "token revoked; reconnect with a new token";
const NARROWED = "token no longer allows this connection; reconnect with a new token";

/** Connections to close within this long of the reload (generous: the machine is shared). */
const CLOSE_DEADLINE_MS = 15_000;

function spawnTokenHub(path: string): Promise<HubProcess> {
  return spawnHub({ HERALD_AUTH: "token", HERALD_TOKENS_FILE: path });
}

async function connectAgent(hub: HubProcess, token: string, agentId: string) {
  const registered = await register(hub.url, { agentId, platform: "docker" }, token);
  assert.equal(registered.status, 201, JSON.stringify(registered.body));
  return await TestClient.connect(
    `${hub.wsUrl.replace("/ws", "")}/api/v1/agents/connect?agent_id=${agentId}`,
    { "X-Agent-API-Key": token },
  );
}

/** Publishes one event as the publisher and waits until every reader in `readers` has it. */
async function publishReaches(hub: HubProcess, readers: (TestClient | SseReader)[]) {
  const response = await fetch(`${hub.url}/events`, {
    method: "POST",
    headers: { authorization: `Bearer ${PUBLISHER}`, "content-type": "application/json" },
    body: JSON.stringify({
      type: "deploy.step",
      appId: "web",
      payload: { step: "after", status: "running" },
    }),
  });
  assert.equal(response.status, 202, await response.text());
  for (const client of readers) {
    await waitFor(
      () =>
        client instanceof SseReader
          ? client.events.some((event) => event.data.payload?.step === "after")
          : client.events.some((event) => event.payload?.step === "after"),
      "the event published after the reload",
      CLOSE_DEADLINE_MS,
    );
  }
}

async function revoked(hub: HubProcess, transport: string): Promise<number> {
  return (await readMetrics(hub.url)).get(
    `herald_revoked_connections_total{transport="${transport}"}`,
  ) ?? 0;
}

/** The close code and reason a WebSocket (or the `event: close` an SSE stream) ends with. */
async function closeOf(client: TestClient | SseReader, what: string) {
  if (client instanceof TestClient) {
    const closed = await waitFor(() => client.closeEvent, what, CLOSE_DEADLINE_MS);
    return { code: closed.code, reason: closed.reason };
  }
  return await waitFor(
    () => client.messages.find((message) => message.event === "close")?.data,
    what,
    CLOSE_DEADLINE_MS,
  );
}

Deno.test("revoke: rewriting the tokens file without a token closes its WebSocket, SSE and agent connections with 4001; the others keep receiving", async () => {
  await using file = await tokensFile(BASE);
  await using hub = await spawnTokenHub(file.path);
  await using wsA = await TestClient.connect(`${hub.wsUrl}?token=${READER_A}`);
  await using sseA = await SseReader.open(`${hub.url}/events/stream?token=${READER_A}`);
  await using wsB = await TestClient.connect(`${hub.wsUrl}?token=${READER_B}`);
  await using sseB = await SseReader.open(`${hub.url}/events/stream?token=${READER_B}`);
  await using agentA = await connectAgent(hub, AGENT_A, "edge-a");
  await using agentB = await connectAgent(hub, AGENT_B, "edge-b");
  // Opened with A, now acting as B: its original token is not what it holds any more.
  await using refreshed = await TestClient.connect(`${hub.wsUrl}?token=${READER_A}`);
  const answer = await refreshed.request({ type: "refresh", token: READER_B, requestId: "r" });
  assert.equal(answer.payload.status, "refreshed");
  assert.equal(sseA.response.status, 200);

  await file.writeTokens(BASE.filter((entry) => ![READER_A, AGENT_A].includes(entry.token)));

  const revokedClose = { code: 4001, reason: REVOKED };
  assert.deepEqual(await closeOf(wsA, "A's WebSocket to close"), revokedClose);
  assert.deepEqual(await closeOf(sseA, "A's SSE stream to end"), revokedClose);
  assert.deepEqual(await closeOf(agentA, "agent A's connection to close"), revokedClose);

  await publishReaches(hub, [wsB, sseB, refreshed]);
  assert.equal(wsB.closeEvent, null);
  assert.equal(refreshed.closeEvent, null, "refreshed to a token still present: it stays");
  assert.equal(agentB.closeEvent, null);
  assert.ok(!sseB.messages.some((message) => message.event === "close"));
  assert.deepEqual(
    [await revoked(hub, "websocket"), await revoked(hub, "sse"), await revoked(hub, "agent")],
    [1, 1, 1],
  );
  const line = hub.logs.find((entry) => entry.includes("Rechecked live connections"));
  assert.ok(line !== undefined && line.includes('"closed":3'), line);
  const logs = hub.logs.join("\n");
  for (const token of [READER_A, AGENT_A]) assert.ok(!logs.includes(token), "no token is logged");
});

Deno.test("revoke: on SIGHUP a removed token's connections close; a changed tenant or narrower scopes close those they no longer allow and keep the rest", async () => {
  // The hub watches the directory of HERALD_TOKENS_FILE; a symlink there to a file elsewhere
  // lets the test change the tokens unseen, so only SIGHUP reloads them.
  await using target = await tokensFile([
    ...BASE,
    reader("reader-c-token-0000000006", "reader-c"),
    reader("reader-d-token-0000000007", "reader-d"),
    reader("reader-e-token-0000000008", "reader-e"),
  ]);
  const dir = await Deno.makeTempDir({ prefix: "herald-tokens-link-" });
  const link = `${dir}/tokens.json`;
  await Deno.symlink(target.path, link);
  try {
    await using hub = await spawnTokenHub(link);
    await using wsA = await TestClient.connect(`${hub.wsUrl}?token=${READER_A}`);
    await using sseA = await SseReader.open(`${hub.url}/events/stream?token=${READER_A}`);
    await using wsB = await TestClient.connect(`${hub.wsUrl}?token=${READER_B}`);
    await using sseB = await SseReader.open(`${hub.url}/events/stream?token=${READER_B}`);
    // C holds `*`, which its narrowed scope no longer allows; D subscribed within it; E moves.
    await using wsC = await TestClient.connect(`${hub.wsUrl}?token=reader-c-token-0000000006`);
    await using wsD = await TestClient.connect(
      `${hub.wsUrl}?token=reader-d-token-0000000007&topic=deploy.*`,
    );
    await using wsE = await TestClient.connect(`${hub.wsUrl}?token=reader-e-token-0000000008`);

    const deployOnly = ["subscribe:deploy.*"];
    await target.writeTokens([
      ...BASE.filter((entry) => entry.token !== READER_A),
      { ...reader("reader-c-token-0000000006", "reader-c"), scopes: deployOnly },
      { ...reader("reader-d-token-0000000007", "reader-d"), scopes: deployOnly },
      { ...reader("reader-e-token-0000000008", "reader-e"), tenant: "globex" },
    ]);
    hub.child.kill("SIGHUP");

    const revokedClose = { code: 4001, reason: REVOKED };
    assert.deepEqual(await closeOf(wsA, "A's WebSocket to close"), revokedClose);
    assert.deepEqual(await closeOf(sseA, "A's SSE stream to end"), revokedClose);
    const narrowedClose = { code: 4001, reason: NARROWED };
    assert.deepEqual(await closeOf(wsC, "C's WebSocket (holding *) to close"), narrowedClose);
    assert.deepEqual(await closeOf(wsE, "E's WebSocket (moved tenant) to close"), narrowedClose);
    await publishReaches(hub, [wsB, sseB, wsD]);
    assert.equal(wsB.closeEvent, null);
    assert.equal(wsD.closeEvent, null, "still within its new scopes: it stays");
    assert.equal(await revoked(hub, "websocket"), 3);
    assert.equal(await revoked(hub, "sse"), 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
