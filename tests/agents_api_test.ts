/**
 * The control plane's agent API on a real hub: reads, approval, commands with and without
 * waiting, broadcast, the WebSocket `request` path, and what is refused (and changes nothing).
 */

import assert from "node:assert/strict";
import { openTestHub, TEST_TOKEN, TestClient } from "./_harness.ts";
import { AGENT_ENV, commandsOf, connectAgent, control, obey, register } from "./_agents.ts";

Deno.test("agent API: manual approval through the admin API; pending and rejected agents cannot connect", async () => {
  await using hub = await openTestHub({ ...AGENT_ENV, HERALD_AGENT_APPROVAL: "manual" });
  const pending = await register(hub.url, { agentId: "m1", platform: "vm" });
  assert.equal(pending.status, 202);
  assert.equal(pending.body.approvalStatus, "pending");
  assert.equal(pending.body.apiKey, undefined);
  const refused = await fetch(`${hub.url}/api/v1/agents/connect?agent_id=m1`, {
    headers: { "x-agent-api-key": AGENT_ENV.HERALD_AGENT_KEY, upgrade: "websocket" },
  });
  assert.equal(refused.status, 403);
  await refused.body?.cancel();
  const anonymous = await fetch(`${hub.url}/agents/m1/approve`, { method: "POST" });
  assert.equal(anonymous.status, 401, "approving needs the control credential");
  await anonymous.body?.cancel();
  const approved = await control(hub.url, "POST", "/agents/m1/approve");
  assert.equal(approved.body.agent.approvalStatus, "approved");
  const again = await register(hub.url, { agentId: "m1", platform: "vm" });
  assert.equal(again.status, 200);
  assert.match(again.body.apiKey, /^hak_/);
  await control(hub.url, "POST", "/agents/m1/reject");
  assert.equal((await register(hub.url, { agentId: "m1" })).body.approvalStatus, "rejected");
});

Deno.test("agent API: reads, commands with ?wait, broadcast, and refusals that change nothing", async () => {
  await using hub = await openTestHub(AGENT_ENV);
  await using one = await connectAgent(hub.url, "a-1");
  await using two = await connectAgent(hub.url, "a-2");
  obey(one);
  const list = await (await fetch(`${hub.url}/agents`)).json();
  assert.deepEqual(list.agents.map((agent: { agentId: string }) => agent.agentId), ["a-1", "a-2"]);
  assert.ok(list.agents.every((agent: { online: boolean }) => agent.online));

  const waited = await control(hub.url, "POST", "/agents/a-1/commands?wait=10s", {
    action: "echo",
    payload: { n: 1 },
  });
  assert.equal(waited.body.status, "completed");
  // a-2 never answers: the wait ends with the command still in flight.
  const pending = await control(hub.url, "POST", "/agents/a-2/commands?wait=200ms", {
    action: "x",
  });
  assert.equal(pending.status, 200);
  assert.equal(pending.body.status, "sent");

  const broadcast = await control(hub.url, "POST", "/agents/broadcast", {
    action: "refresh",
    exclude: "a-1",
  });
  assert.deepEqual(broadcast.body.sent.map((sent: { agentId: string }) => sent.agentId), ["a-2"]);
  assert.equal(commandsOf(two).length, 2);

  const before = commandsOf(one).length;
  const noToken = await fetch(`${hub.url}/agents/a-1/commands`, {
    method: "POST",
    body: '{"action":"echo"}',
  });
  assert.equal(noToken.status, 401);
  await noToken.body?.cancel();
  assert.equal(
    (await control(hub.url, "POST", "/agents/a-1/commands", { action: "" })).status,
    400,
  );
  assert.equal(
    (await control(hub.url, "POST", "/agents/a-1/commands?wait=forever", { action: "echo" }))
      .status,
    400,
  );
  assert.equal(
    (await control(hub.url, "POST", "/agents/ghost/commands", { action: "echo" })).status,
    404,
  );
  assert.equal((await control(hub.url, "GET", "/agents/a-1/commands/nope")).status, 404);
  assert.equal((await fetch(`${hub.url}/agents/ghost`)).status, 404);
  assert.equal(commandsOf(one).length, before, "refused commands reach no agent");
});

Deno.test("agent API over the WebSocket request path: agents for everyone, agents.command with the control grant", async () => {
  await using hub = await openTestHub(AGENT_ENV);
  await using agent = await connectAgent(hub.url, "ws-1");
  obey(agent);
  await using reader = await TestClient.connect(hub.wsUrl);
  const listed = await reader.request({ type: "request", topic: "agents", requestId: "1" });
  assert.equal(listed.payload.agents[0].agentId, "ws-1");
  const refused = await reader.request({
    type: "request",
    topic: "agents.command",
    requestId: "2",
    payload: { agentId: "ws-1", action: "echo" },
  });
  assert.equal(refused.type, "error");
  assert.equal(refused.payload.code, "forbidden");
  assert.equal(commandsOf(agent).length, 0);
  await using operator = await TestClient.connect(`${hub.wsUrl}?token=${TEST_TOKEN}`);
  const sent = await operator.request({
    type: "request",
    topic: "agents.command",
    requestId: "3",
    payload: { agentId: "ws-1", action: "echo", payload: { via: "ws" } },
  });
  assert.equal(typeof sent.payload.commandId, "string");
  await agent.waitForFrame(
    (frame) => frame.type === "command",
    "the command over the WebSocket path",
  );
  const offline = await operator.request({
    type: "request",
    topic: "agents.command",
    requestId: "4",
    payload: { agentId: "ws-2", action: "echo" },
  });
  assert.equal(offline.payload.code, "not_found");
});

Deno.test("agent connection on a real hub: a duplicate agent_id replaces the older socket (4520); silence is stale (4020)", async () => {
  await using hub = await openTestHub({
    ...AGENT_ENV,
    HERALD_AGENT_STALE_MS: "1000",
    HERALD_AGENT_CHECK_MS: "100",
  });
  await using watcher = await TestClient.connect(`${hub.wsUrl}?topic=agent.*`);
  const first = await connectAgent(hub.url, "dup-1");
  const second = await connectAgent(hub.url, "dup-1");
  const replaced = await first.closedPromise;
  assert.equal(replaced.code, 4520);
  assert.equal(replaced.reason, "replaced by a newer connection");
  // Heartbeats keep the newer one; then silence makes it stale.
  const beat = () =>
    second.send({
      type: "heartbeat",
      timestamp: "2026-12-03T08:00:00.000000001Z",
      payload: { status: "online", activeSessions: 1 },
    });
  beat();
  const stale = await second.closedPromise;
  assert.equal(stale.code, 4020);
  await watcher.waitForFrame((frame) => frame.type === "agent.offline", "agent.offline");
  assert.deepEqual(
    watcher.frames.map((frame) => frame.type).filter((t) => t.startsWith("agent.")),
    [
      "agent.online",
      "agent.online",
      "agent.stale",
      "agent.offline",
    ],
  );
});
