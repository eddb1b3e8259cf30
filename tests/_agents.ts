/**
 * Test helpers for agents: the hub-wide agent key test hubs use, registering over HTTP, and
 * commanding with the publish token (the `control` grant in the `none` auth mode).
 * @module
 */

import { type Frame, TEST_TOKEN, TestClient, waitFor } from "./_harness.ts";

/** The hub-wide agent key (`HERALD_AGENT_KEY`) of test hubs. */
export const TEST_AGENT_KEY = "test-agent-key-0123456789";

/** Settings every agent test hub starts with. */
export const AGENT_ENV = { HERALD_AGENT_KEY: TEST_AGENT_KEY };

/** `POST /api/v1/agents/register` with `key`; the status and JSON body. */
export async function register(
  baseUrl: string,
  body: unknown,
  key = TEST_AGENT_KEY,
): Promise<{ status: number; body: Frame }> {
  const response = await fetch(`${baseUrl}/api/v1/agents/register`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-agent-api-key": key },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

/** Registers `agentId` and opens its agent connection with the key it was issued. */
export async function connectAgent(baseUrl: string, agentId: string): Promise<TestClient> {
  const { body } = await register(baseUrl, { agentId, platform: "docker", region: "test" });
  return await TestClient.connect(
    `${baseUrl.replace("http", "ws")}/api/v1/agents/connect?agent_id=${
      encodeURIComponent(agentId)
    }`,
    { "X-Agent-API-Key": body.apiKey },
  );
}

/** A control-plane call with the publish token. */
export async function control(
  baseUrl: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Frame }> {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${TEST_TOKEN}`, "content-type": "application/json" },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: await response.json() };
}

/** Waits until `GET /agents/:id` on `baseUrl` says `online` is `online`. */
export async function waitOnline(
  baseUrl: string,
  agentId: string,
  online: boolean,
  timeoutMs = 5000,
): Promise<Frame> {
  return await waitFor(
    async () => {
      const response = await fetch(`${baseUrl}/agents/${encodeURIComponent(agentId)}`);
      const body = await response.json();
      return body.agent?.online === online ? body.agent : null;
    },
    `${agentId} ${online ? "online" : "offline"} on ${baseUrl}`,
    timeoutMs,
  );
}

/** The command frames an agent client received. */
export function commandsOf(agent: TestClient): Frame[] {
  return agent.frames.filter((frame) => frame.type === "command");
}

/** Answers every command an agent client receives: ack, then complete with its payload. */
export function obey(agent: TestClient): void {
  agent.socket.addEventListener("message", (event) => {
    const frame = JSON.parse(String(event.data));
    if (frame.type !== "command") return;
    const { commandId, payload } = frame.payload;
    agent.send({
      type: "ack",
      timestamp: "2026-12-03T08:00:00.000000001Z",
      payload: { commandId },
    });
    agent.send({
      type: "complete",
      timestamp: "2026-12-03T08:00:00.000000002Z",
      payload: { commandId, result: { echoed: payload } },
    });
  });
}
