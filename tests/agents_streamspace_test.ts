/**
 * A StreamSpace agent, frame for frame: the frames below are written out literally as its Go
 * source sends them (RFC 3339 timestamps with nanoseconds and a local offset), through
 * register, connect, heartbeat, command, ack and complete; and the answers it needs before
 * upgrading (400, 401, 404).
 */

import assert from "node:assert/strict";
import { openTestHub, TestClient, waitFor } from "./_harness.ts";
import { AGENT_ENV, control, TEST_AGENT_KEY } from "./_agents.ts";

const REGISTER_BODY =
  '{"agentId":"k8s-prod-us-east-1","platform":"kubernetes","region":"us-east-1","capacity":{"maxSessions":100,"cpu":"64 cores","memory":"256Gi"},"metadata":{"version":"v2.0.0","cluster":"prod"}}';
const HEARTBEAT =
  '{"type":"heartbeat","timestamp":"2026-12-03T08:15:30.123456789+01:00","payload":{"status":"online","activeSessions":0,"capacity":{"maxSessions":100,"cpu":"64 cores","memory":"256Gi"}}}';
const ack = (commandId: string) =>
  `{"type":"ack","timestamp":"2026-12-03T08:15:31.000000001+01:00","payload":{"commandId":"${commandId}"}}`;
const complete = (commandId: string) =>
  `{"type":"complete","timestamp":"2026-12-03T08:15:32.987654321+01:00","payload":{"commandId":"${commandId}","result":{"sessionId":"sess-1","podName":"sess-1-7f9c"}}}`;
const STATUS =
  '{"type":"status","payload":{"sessionId":"sess-1","state":"running","vncReady":true,"vncPort":5900,"platformMetadata":{"pod":"sess-1-7f9c"}}}';

/** RFC 3339 with nine fractional digits, as Go's time.RFC3339Nano parses it. */
const RFC3339_NANO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d)$/;

Deno.test("a StreamSpace agent registers, connects, heartbeats, is commanded, acks and completes", async () => {
  await using hub = await openTestHub(AGENT_ENV);
  await using watcher = await TestClient.connect(`${hub.wsUrl}?topic=agent.*&topic=session.*`);

  const registered = await fetch(`${hub.url}/api/v1/agents/register`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Agent-API-Key": TEST_AGENT_KEY },
    body: REGISTER_BODY,
  });
  assert.equal(registered.status, 201);
  const registration = await registered.json();
  assert.equal(registration.agentId, "k8s-prod-us-east-1");
  assert.equal(registration.approvalStatus, "approved");
  assert.equal(typeof registration.status, "string");
  assert.equal(typeof registration.message, "string");
  assert.match(registration.apiKey, /^hak_/);

  // The agent replaces its key with apiKey for every later call.
  const agent = await TestClient.connect(
    `${hub.url.replace("http", "ws")}/api/v1/agents/connect?agent_id=k8s-prod-us-east-1`,
    { "X-Agent-API-Key": registration.apiKey },
  );
  await watcher.waitForFrame((f) => f.type === "agent.online", "agent.online");
  agent.send(HEARTBEAT);
  await waitFor(async () => {
    const body = await (await fetch(`${hub.url}/agents/k8s-prod-us-east-1`)).json();
    return body.agent.lastHeartbeat !== null && body.agent.activeSessions === 0;
  }, "the heartbeat recorded");
  const agentsOnline = async () =>
    (await (await fetch(`${hub.url}/metrics`)).text()).match(/^herald_agents_online (\d+)$/m)?.[1];
  assert.equal(await agentsOnline(), "1", "herald_agents_online counts the connected agent");

  const sent = await control(hub.url, "POST", "/agents/k8s-prod-us-east-1/commands", {
    action: "start_session",
    payload: { sessionId: "sess-1", user: "alice", template: "firefox" },
  });
  assert.equal(sent.status, 202);
  const commandId = sent.body.commandId;
  const command = await agent.waitForFrame((f) => f.type === "command", "the command frame");
  assert.deepEqual(Object.keys(command).sort(), ["payload", "timestamp", "type"]);
  assert.match(command.timestamp, RFC3339_NANO);
  assert.deepEqual(command.payload, {
    commandId,
    action: "start_session",
    payload: { sessionId: "sess-1", user: "alice", template: "firefox" },
  });

  agent.send(ack(commandId));
  await watcher.waitForFrame((f) => f.type === "agent.command.acked", "agent.command.acked");
  agent.send(STATUS);
  const session = await watcher.waitForFrame(
    (f) => f.type === "session.state.changed",
    "session.state.changed",
  );
  assert.equal(session.payload.state, "running");
  assert.equal(session.payload.agentId, "k8s-prod-us-east-1");
  assert.equal(session.sessionId, "sess-1", "in the envelope, where session filters look");
  agent.send(complete(commandId));
  const done = await watcher.waitForFrame(
    (f) => f.type === "agent.command.completed",
    "agent.command.completed",
  );
  assert.deepEqual(done.payload.result, { sessionId: "sess-1", podName: "sess-1-7f9c" });
  const status = await control(
    hub.url,
    "GET",
    `/agents/k8s-prod-us-east-1/commands/${commandId}`,
  );
  assert.equal(status.body.command.status, "completed");
  assert.equal(typeof status.body.command.ackedAt, "number");

  // A VNC frame is answered with a clear error; the connection stays.
  agent.send(
    '{"type":"vnc_data","timestamp":"2026-12-03T08:15:33.5+01:00","payload":{"sessionId":"sess-1","data":"AAAA"}}',
  );
  const vnc = await agent.waitForFrame((f) => f.type === "error", "the vnc error");
  assert.equal(vnc.payload.code, "vnc_unsupported");
  assert.equal(agent.socket.readyState, WebSocket.OPEN);

  await agent.close();
  await watcher.waitForFrame((f) => f.type === "agent.offline", "agent.offline");
  assert.equal(await agentsOnline(), "0");
});

Deno.test("the agent endpoint answers 400, 401 and 404 before upgrading", async () => {
  await using hub = await openTestHub(AGENT_ENV);
  const get = (query: string, headers: Record<string, string>) =>
    fetch(`${hub.url}/api/v1/agents/connect${query}`, {
      headers: { upgrade: "websocket", connection: "Upgrade", ...headers },
    }).then(async (response) => ({ status: response.status, body: await response.json() }));
  const key = { "X-Agent-API-Key": TEST_AGENT_KEY };
  assert.equal((await get("", key)).status, 400);
  assert.equal((await get("?agent_id=k1", {})).status, 401);
  assert.equal((await get("?agent_id=k1", { "X-Agent-API-Key": "wrong-key" })).status, 401);
  assert.equal((await get("?agent_id=never-registered", key)).status, 404);
  // The same endpoint without the /api/v1 prefix.
  assert.equal((await get("?agent_id=never-registered", key)).body.error.code, "not_found");
  const short = await fetch(`${hub.url}/agents/connect`, { headers: key });
  assert.equal(short.status, 400);
  await short.body?.cancel();
  // Registration needs a key, and a JSON body.
  const noKey = await fetch(`${hub.url}/api/v1/agents/register`, { method: "POST", body: "{}" });
  assert.equal(noKey.status, 401);
  await noKey.body?.cancel();
  const bad = await fetch(`${hub.url}/api/v1/agents/register`, {
    method: "POST",
    headers: key,
    body: "{not json",
  });
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).error.code, "bad_json");
});
