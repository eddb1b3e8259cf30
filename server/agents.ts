/**
 * The agents' HTTP surface: registration and the agent WebSocket (`/api/v1/agents/...`, as
 * StreamSpace agents call them, and the same under `/agents/...`), and the control plane's API
 * (`GET /agents`, commands, broadcast, approval). Turns requests into calls on the
 * {@linkcode AgentRegistry}; credentials come from the auth seam only.
 * @module
 */

import { onSocketEnd, upgradeWebSocket } from "./node_http.ts";
import { type AgentRegistry, checkAgentId, mayControl } from "../agents/registry.ts";
import { DISCONNECT } from "../events/codes.ts";
import type { Principal } from "../hub/principal.ts";
import type { Access, Authenticator } from "./auth.ts";
import type { Config } from "./config.ts";
import { answerError, refuse } from "./errors.ts";
import { logger } from "./log.ts";
import { readLimited, TIMED_OUT } from "./publish.ts";
import { httpError, json } from "./responses.ts";

const log = logger("agents");

/** What the agent routes need. */
export interface AgentRouteDeps {
  readonly agents: AgentRegistry;
  readonly auth: Authenticator;
  readonly config: Pick<
    Config,
    "maxBodyBytes" | "bodyTimeoutMs" | "agentMaxFrameBytes" | "pingIntervalSeconds"
  >;
  /** Takes a long-lived connection slot (returns its release) or answers why not. */
  readonly admit: () => (() => void) | Response;
}

const AGENT_ROUTE = new URLPattern({ pathname: "/agents/:agentId{/:verb}?" });
const COMMAND_ROUTE = new URLPattern({ pathname: "/agents/:agentId/commands/:commandId" });

/**
 * Answers a request for one of the agent routes, or returns null when the path is not one.
 *
 * Routes: `POST /api/v1/agents/register`, `GET /api/v1/agents/connect` (and both under
 * `/agents/`), `GET /agents`, `GET /agents/:id`, `POST /agents/:id/approve|reject`,
 * `POST /agents/:id/commands[?wait=30s]`, `GET /agents/:id/commands/:commandId`,
 * `POST /agents/broadcast`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { agentRoutes, type AgentRouteDeps } from "./agents.ts";
 * const deps = {} as AgentRouteDeps;
 * assert.equal(agentRoutes(new Request("http://hub/state"), new URL("http://hub/state"), deps), null);
 * const url = new URL("http://hub/api/v1/agents/connect");
 * const response = await agentRoutes(new Request(url), url, deps);
 * assert.equal(response?.status, 400);
 * ```
 */
export function agentRoutes(
  request: Request,
  url: URL,
  deps: AgentRouteDeps,
): Promise<Response> | null {
  const path = url.pathname.startsWith("/api/v1/agents")
    ? url.pathname.slice("/api/v1".length)
    : url.pathname;
  const method = request.method;
  if (path === "/agents/register") {
    return method === "POST" ? register(request, deps) : methodNotAllowed("POST");
  }
  if (path === "/agents/connect") {
    return method === "GET" ? connect(request, url, deps) : methodNotAllowed("GET");
  }
  if (url.pathname !== path) return null;
  if (path === "/agents") {
    if (method !== "GET") return methodNotAllowed("GET");
    return withPrincipal(request, deps, "read", async (principal) => ({
      agents: await deps.agents.list(principal.tenant),
    }));
  }
  if (path === "/agents/broadcast") {
    if (method !== "POST") return methodNotAllowed("POST");
    return withControl(request, deps, async (principal) => {
      const body = await readJson(request, deps);
      if (body instanceof Response) return body;
      return await deps.agents.broadcast(principal, body);
    });
  }
  const commandRoute = COMMAND_ROUTE.exec(url);
  if (commandRoute !== null) {
    if (method !== "GET") return methodNotAllowed("GET");
    const agentId = decoded(commandRoute.pathname.groups.agentId!);
    const commandId = decoded(commandRoute.pathname.groups.commandId!);
    if (agentId === null || commandId === null) return badPath();
    return withControl(request, deps, async (principal) => ({
      command: await deps.agents.commandStatus(principal.tenant, agentId, commandId),
    }));
  }
  const agentRoute = AGENT_ROUTE.exec(url);
  if (agentRoute === null) return null;
  const agentId = decoded(agentRoute.pathname.groups.agentId!);
  if (agentId === null) return badPath();
  const verb = agentRoute.pathname.groups.verb;
  switch (verb) {
    case undefined:
      if (method !== "GET") return methodNotAllowed("GET");
      return withPrincipal(request, deps, "read", async (principal) => ({
        agent: await deps.agents.view(principal.tenant, agentId),
      }));
    case "approve":
    case "reject":
      if (method !== "POST") return methodNotAllowed("POST");
      return withControl(request, deps, async (principal) => ({
        agent: await deps.agents.decide(principal.tenant, agentId, verb === "approve"),
      }));
    case "commands":
      if (method !== "POST") return methodNotAllowed("POST");
      return command(request, url, agentId, deps);
    default:
      return null;
  }
}

async function register(request: Request, deps: AgentRouteDeps): Promise<Response> {
  const authentication = await deps.auth.authenticate(request, "agent" satisfies Access);
  if (!authentication.ok) return refuse(authentication.refusal);
  const body = await readJson(request, deps);
  if (body instanceof Response) return body;
  try {
    const registration = await deps.agents.register(authentication.principal, body);
    return json(registration.body, registration.status);
  } catch (error) {
    return answerError(error);
  }
}

async function command(
  request: Request,
  url: URL,
  agentId: string,
  deps: AgentRouteDeps,
): Promise<Response> {
  const wait = url.searchParams.get("wait");
  const waitMs = wait === null ? 0 : parseWait(wait);
  if (waitMs === null || waitMs > deps.agents.settings.maxWaitMs) {
    return httpError(
      "bad_request",
      `wait must be a duration such as 30s or 500ms, at most ${deps.agents.settings.maxWaitMs} ms`,
    );
  }
  return await withControl(request, deps, async (principal) => {
    const body = await readJson(request, deps);
    if (body instanceof Response) return body;
    const sent = await deps.agents.command(principal, agentId, body);
    if (waitMs === 0) return json({ commandId: sent.commandId, status: sent.status }, 202);
    const command = await deps.agents.waitFor(principal.tenant, agentId, sent.commandId, waitMs);
    return json({ commandId: command.commandId, status: command.status, command });
  });
}

/**
 * A `?wait=` duration in milliseconds (`30s`, `500ms`, `2m`, or plain seconds), or null.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseWait } from "./agents.ts";
 * assert.deepEqual([parseWait("30s"), parseWait("500ms"), parseWait("2m"), parseWait("5")], [30000, 500, 120000, 5000]);
 * assert.equal(parseWait("soon"), null);
 * ```
 */
export function parseWait(text: string): number | null {
  const match = /^(\d{1,7})(ms|s|m)?$/.exec(text.trim());
  if (match === null) return null;
  const unit = match[2] ?? "s";
  return Number(match[1]) * (unit === "ms" ? 1 : unit === "s" ? 1000 : 60_000);
}

/** The agent WebSocket: 400 without agent_id, 401 bad key, 404 unknown, 403 not approved. */
async function connect(request: Request, url: URL, deps: AgentRouteDeps): Promise<Response> {
  const agentId = url.searchParams.get("agent_id");
  if (agentId === null || agentId === "") {
    return httpError("bad_request", "agent_id is required: /api/v1/agents/connect?agent_id=<id>");
  }
  const authentication = await deps.auth.authenticate(request, "agent" satisfies Access);
  if (!authentication.ok) return refuse(authentication.refusal);
  const principal = authentication.principal;
  try {
    checkAgentId(agentId);
    await deps.agents.admit(principal, agentId);
  } catch (error) {
    return answerError(error);
  }
  if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return httpError("upgrade_required", "the agent endpoint speaks WebSocket only", {}, {
      upgrade: "websocket",
    });
  }
  const release = deps.admit();
  if (release instanceof Response) return release;
  let upgraded: { socket: WebSocket; response: Response };
  try {
    upgraded = upgradeWebSocket(request, { idleTimeout: deps.config.pingIntervalSeconds * 2 });
  } catch {
    release();
    return httpError("bad_request", "not a WebSocket handshake");
  }
  const { socket, response } = upgraded;
  const maxBytes = deps.config.agentMaxFrameBytes;
  /** Frames that arrive while the registry records the connection wait here, in order. */
  const early: string[] = [];
  let handlers: { text(data: string): void; closed(): void } | null = null;
  let closed = false;
  socket.onopen = async () => {
    try {
      const attached = await deps.agents.attach(principal, agentId, socket);
      handlers = attached;
      for (const data of early.splice(0)) attached.text(data);
      if (closed) attached.closed();
    } catch (error) {
      log.warn("Could not record agent {agentId}'s connection: {error}", {
        agentId,
        error: error instanceof Error ? error.message : String(error),
      });
      socket.close(DISCONNECT.internal.code, DISCONNECT.internal.reason);
    }
  };
  socket.onmessage = (event) => {
    if (typeof event.data !== "string") {
      socket.close(DISCONNECT.binaryFrame.code, DISCONNECT.binaryFrame.reason);
      return;
    }
    // Characters never exceed bytes; only a long frame needs counting in bytes.
    if (
      event.data.length > maxBytes / 3 && new TextEncoder().encode(event.data).byteLength > maxBytes
    ) {
      socket.close(DISCONNECT.messageTooBig.code, DISCONNECT.messageTooBig.reason);
      return;
    }
    if (handlers === null) early.push(event.data);
    else handlers.text(event.data);
  };
  const end = () => {
    if (closed) return;
    closed = true;
    release();
    handlers?.closed();
  };
  onSocketEnd(socket, end);
  return response;
}

/** Authenticates with `access`, then answers `answer(principal)` as JSON (or its error). */
async function withPrincipal(
  request: Request,
  deps: AgentRouteDeps,
  access: Access,
  answer: (principal: Principal) => Promise<unknown>,
): Promise<Response> {
  const authentication = await deps.auth.authenticate(request, access);
  if (!authentication.ok) return refuse(authentication.refusal);
  try {
    const body = await answer(authentication.principal);
    return body instanceof Response ? body : json(body);
  } catch (error) {
    return answerError(error);
  }
}

/** Like {@linkcode withPrincipal} for the control-plane calls: needs the `control` grant. */
function withControl(
  request: Request,
  deps: AgentRouteDeps,
  answer: (principal: Principal) => Promise<unknown>,
): Promise<Response> {
  return withPrincipal(request, deps, "control", (principal) => {
    if (!mayControl(principal)) {
      return Promise.resolve(httpError("forbidden", "commanding agents needs the control grant"));
    }
    return answer(principal);
  });
}

async function readJson(request: Request, deps: AgentRouteDeps): Promise<unknown | Response> {
  const { maxBodyBytes, bodyTimeoutMs } = deps.config;
  const body = await readLimited(request, maxBodyBytes, bodyTimeoutMs);
  if (body === TIMED_OUT) {
    return httpError("request_timeout", `the body did not arrive within ${bodyTimeoutMs} ms`);
  }
  if (body === null) {
    return httpError("body_too_large", `the body is larger than ${maxBodyBytes} bytes`);
  }
  if (body.byteLength === 0) return {};
  try {
    return JSON.parse(new TextDecoder().decode(body));
  } catch {
    return httpError("bad_json", "the body is not valid JSON");
  }
}

function decoded(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

function badPath(): Promise<Response> {
  return Promise.resolve(httpError("bad_request", "the path is not valid percent-encoded UTF-8"));
}

function methodNotAllowed(allow: string): Promise<Response> {
  return Promise.resolve(httpError("method_not_allowed", `use ${allow}`, {}, { allow }));
}
