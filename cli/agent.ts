/**
 * The reference agent (`deno task agent`): behaves as a StreamSpace agent does, so the agent
 * flow can be tried without a cluster and tests can run a real agent process. It registers
 * (`POST /api/v1/agents/register`), connects (`/api/v1/agents/connect?agent_id=`), sends a
 * heartbeat every interval (the first one after one interval), answers `ping` with `pong`,
 * acknowledges every command at once and runs a few harmless demo actions:
 * - `echo`: completes with its payload as the result;
 * - `sleep`: waits `payload.ms` (at most 10 s), then completes;
 * - `start_session` / `stop_session`: reports the session's state in a `status` frame, then
 *   completes;
 * - anything else: `failed` with "unknown action".
 *
 * On a lost connection it re-registers and reconnects after 2, 4, 8, 16, then 32 s (back to 2 s
 * once connected); a `shutdown` frame stops it for good (exit 0).
 *
 * Options: `--url` (HERALD_URL, default http://localhost:8800), `--key` (HERALD_AGENT_KEY, else
 * `.herald/agent-key`), `--id` (default `demo-agent-<host>`), `--platform`, `--region`,
 * `--heartbeat-ms` (30000), `--backoff-ms` (2000: the first reconnect delay; it doubles up to
 * 16 times that).
 * @module
 */

import { parseArgs } from "node:util";
import { isJsonObject, type JsonObject } from "../events/json.ts";
import { rfc3339Nano } from "../agents/protocol.ts";

/** How the agent runs. */
export interface AgentOptions {
  readonly url: string;
  readonly key: string;
  readonly agentId: string;
  readonly platform: string;
  readonly region: string;
  readonly heartbeatMs: number;
  readonly backoffMs: number;
}

/**
 * The reconnect delay after `failures` failed attempts in a row: 2, 4, 8, 16, 32 s (for a
 * `baseMs` of 2 s), then 32 s.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reconnectDelay } from "./agent.ts";
 * assert.deepEqual([0, 1, 2, 3, 4, 5, 9].map((n) => reconnectDelay(n, 2000)), [2000, 4000, 8000, 16000, 32000, 32000, 32000]);
 * ```
 */
export function reconnectDelay(failures: number, baseMs: number): number {
  return baseMs * 2 ** Math.min(failures, 4);
}

const stamp = () => rfc3339Nano(Date.now());

function say(line: string): void {
  console.log(`${new Date().toISOString()} ${line}`);
}

/** Registers; resolves with the key to use from now on, or null when it must stop. */
async function register(options: AgentOptions, key: string): Promise<string | null> {
  for (;;) {
    const response = await fetch(`${options.url}/api/v1/agents/register`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-agent-api-key": key },
      body: JSON.stringify({
        agentId: options.agentId,
        platform: options.platform,
        region: options.region,
        capacity: { maxSessions: 4, cpu: "2 cores", memory: "4Gi" },
        metadata: { agent: "herald reference agent" },
      }),
    });
    const body = await response.json().catch(() => null);
    if (![200, 201, 202].includes(response.status) || !isJsonObject(body)) {
      throw new Error(`registration answered ${response.status}`);
    }
    if (body.approvalStatus === "rejected") {
      say("registration rejected; stopping");
      return null;
    }
    if (body.approvalStatus === "pending") {
      say("registration pending approval; asking again in 30 s");
      await new Promise((resolve) => setTimeout(resolve, 30_000));
      continue;
    }
    say(`registered as ${options.agentId}`);
    return typeof body.apiKey === "string" ? body.apiKey : key;
  }
}

/** One connection: resolves with "closed" (reconnect) or "shutdown" (stop). */
function session(options: AgentOptions, key: string): Promise<"closed" | "shutdown"> {
  const wsUrl = `${options.url.replace(/^http/, "ws")}/api/v1/agents/connect?agent_id=${
    encodeURIComponent(options.agentId)
  }`;
  const socket = new WebSocket(wsUrl, { headers: { "X-Agent-API-Key": key } });
  let heartbeat: ReturnType<typeof setInterval> | null = null;
  let outcome: "closed" | "shutdown" = "closed";
  const send = (frame: JsonObject) => {
    if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
  };
  socket.onopen = () => {
    say("connected");
    heartbeat = setInterval(() =>
      send({
        type: "heartbeat",
        timestamp: stamp(),
        payload: { status: "online", activeSessions: 0, capacity: { maxSessions: 4 } },
      }), options.heartbeatMs);
  };
  socket.onmessage = (event) => {
    let frame: unknown;
    try {
      frame = JSON.parse(String(event.data));
    } catch {
      return;
    }
    if (!isJsonObject(frame)) return;
    const payload = isJsonObject(frame.payload) ? frame.payload : {};
    switch (frame.type) {
      case "ping":
        send({ type: "pong", timestamp: stamp(), payload: { timestamp: stamp() } });
        return;
      case "shutdown":
        say(`shutdown: ${String(payload.reason ?? "")}`);
        outcome = "shutdown";
        socket.close(1000, "shutdown");
        return;
      case "command":
        void run(payload, send);
        return;
      default:
        say(`ignored a ${String(frame.type)} frame`);
    }
  };
  return new Promise((resolve) => {
    socket.onclose = (event) => {
      if (heartbeat !== null) clearInterval(heartbeat);
      say(`disconnected (${event.code})`);
      resolve(outcome);
    };
  });
}

/** Acknowledges a command, runs its demo action and reports the outcome. */
async function run(command: JsonObject, send: (frame: JsonObject) => void): Promise<void> {
  const commandId = String(command.commandId ?? "");
  const action = String(command.action ?? "");
  const payload = isJsonObject(command.payload) ? command.payload : {};
  send({ type: "ack", timestamp: stamp(), payload: { commandId } });
  say(`command ${action} (${commandId})`);
  const complete = (result: JsonObject) =>
    send({ type: "complete", timestamp: stamp(), payload: { commandId, result } });
  switch (action) {
    case "echo":
      return complete(payload);
    case "sleep": {
      const ms = Math.min(Math.max(Number(payload.ms) || 0, 0), 10_000);
      await new Promise((resolve) => setTimeout(resolve, ms));
      return complete({ sleptMs: ms });
    }
    case "start_session":
    case "stop_session": {
      const sessionId = String(payload.sessionId ?? "demo-session");
      const state = action === "start_session" ? "running" : "terminated";
      send({
        type: "status",
        payload: {
          sessionId,
          state,
          vncReady: state === "running",
          vncPort: 5900,
          platformMetadata: {},
        },
      });
      return complete({ sessionId, state });
    }
    default:
      send({
        type: "failed",
        timestamp: stamp(),
        payload: { commandId, error: `unknown action "${action}"` },
      });
  }
}

/**
 * Registers, connects and reconnects until a `shutdown` frame or a rejection.
 *
 * @example
 * ```ts ignore
 * import { runAgent } from "./agent.ts";
 * // Runs until the hub sends `shutdown` or rejects the agent (tests/agents_multinode_test.ts
 * // runs it as a process).
 * await runAgent({ url: "http://localhost:8800", key: "…", agentId: "demo", platform: "docker",
 *   region: "local", heartbeatMs: 30_000, backoffMs: 2_000 });
 * ```
 */
export async function runAgent(options: AgentOptions): Promise<void> {
  let key = options.key;
  let failures = 0;
  for (;;) {
    try {
      const issued = await register(options, key);
      if (issued === null) return;
      key = issued;
      const opened = Date.now();
      if (await session(options, key) === "shutdown") return;
      // A connection that lasted resets the backoff.
      if (Date.now() - opened > options.backoffMs) failures = 0;
    } catch (error) {
      say(`could not reach the hub: ${error instanceof Error ? error.message : String(error)}`);
    }
    const delay = reconnectDelay(failures++, options.backoffMs);
    say(`reconnecting in ${delay} ms`);
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

async function defaultKey(): Promise<string> {
  const fromEnv = Deno.env.get("HERALD_AGENT_KEY");
  if (fromEnv) return fromEnv;
  const dir = Deno.env.get("HERALD_DATA_DIR") ?? ".herald";
  try {
    return (await Deno.readTextFile(`${dir}/agent-key`)).trim();
  } catch {
    return "";
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      url: { type: "string" },
      key: { type: "string" },
      id: { type: "string" },
      platform: { type: "string", default: "docker" },
      region: { type: "string", default: "local" },
      "heartbeat-ms": { type: "string", default: "30000" },
      "backoff-ms": { type: "string", default: "2000" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(
      "deno task agent [--url URL] [--key KEY] [--id ID] [--platform P] [--region R] [--heartbeat-ms N] [--backoff-ms N]",
    );
    Deno.exit(0);
  }
  const key = values.key ?? await defaultKey();
  if (key === "") {
    console.error(
      "No agent key: pass --key, set HERALD_AGENT_KEY, or run beside the hub's .herald/",
    );
    Deno.exit(2);
  }
  const heartbeatMs = Number(values["heartbeat-ms"]);
  const backoffMs = Number(values["backoff-ms"]);
  if (!(heartbeatMs >= 100) || !(backoffMs >= 10)) {
    console.error("--heartbeat-ms must be at least 100 and --backoff-ms at least 10");
    Deno.exit(2);
  }
  await runAgent({
    url: (values.url ?? Deno.env.get("HERALD_URL") ?? "http://localhost:8800").replace(/\/+$/, ""),
    key,
    agentId: values.id ?? `demo-agent-${Deno.hostname()}`,
    platform: values.platform,
    region: values.region,
    heartbeatMs,
    backoffMs,
  });
}
