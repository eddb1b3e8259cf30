/**
 * The agent registry: registrations and approval, the agents connected to this node, their
 * heartbeats and staleness, and commands routed to whichever node holds an agent.
 *
 * Shared facts live in the {@linkcode AgentStore} (who is registered, which connection holds an
 * agent, what became of each command) and in presence (whether the node holding a connection is
 * alive); sockets live on the node that accepted them. A command goes to the holding node as a
 * directed bus message; the node that learns a command's outcome stores it (first outcome wins)
 * and tells the node that accepted the command, which answers whoever waits. When a node dies,
 * the first survivor to notice reports the commands it held `agent_lost` (reason `node_lost`)
 * and, past their deadline, the commands it accepted `timed_out`.
 *
 * Transitions are events in the agent's tenant: `agent.online`, `agent.offline`, `agent.stale`,
 * `agent.command.{sent,acked,completed,failed,timed_out,agent_lost}`; `status` frames from agents
 * become `session.state.changed`.
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { type EventInput, MAX_NAME_LENGTH } from "../events/envelope.ts";
import { DISCONNECT, ERROR_CODES } from "../events/codes.ts";
import { isJsonObject, type JsonObject, type JsonValue } from "../events/json.ts";
import type { DirectedMessage } from "../hub/bus/bus.ts";
import type { Clock } from "../hub/clock.ts";
import { RequestError } from "../hub/errors.ts";
import type { Presence } from "../hub/presence/presence.ts";
import type { Principal, Reauthorize } from "../hub/principal.ts";
import {
  AGENT_CLOSE,
  commandFrame,
  decodeAgentFrame,
  errorFrame,
  pingFrame,
  rfc3339Nano,
  shutdownFrame,
} from "./protocol.ts";
import {
  type AgentRecord,
  type AgentStore,
  type ApprovalStatus,
  type CommandNodeRole,
  type CommandOutcome,
  type CommandRecord,
  FINAL_STATUSES,
  type LiveAgent,
  type LostReason,
} from "./store.ts";
import { agentKeyHash } from "./keys.ts";

const log = getLogger(["herald", "agents"]);

/** The socket of one agent connection, as the registry uses it. */
export interface AgentSocket {
  send(text: string): void;
  close(code: number, reason: string): void;
}

/** How the registry behaves; every field is a documented setting. */
export interface AgentSettings {
  /** `auto`: registrations are approved at once; `manual`: pending until an admin approves. */
  readonly approval: "auto" | "manual";
  /** An agent without a heartbeat for longer than this is stale: closed and offline. */
  readonly staleMs: number;
  /** How often staleness, command timeouts and dead nodes' agents are checked. */
  readonly checkMs: number;
  /** A command without an outcome after this long times out. */
  readonly commandTimeoutMs: number;
  /** Longest `?wait=` a command request may ask for. */
  readonly maxWaitMs: number;
  /** Interval of the application `ping` frame (0: never). */
  readonly pingMs: number;
  /** On hub shutdown, send agents `shutdown` (they stop for good) before closing. */
  readonly stopOnShutdown: boolean;
}

/** What the registry is built from. */
export interface AgentRegistryParts {
  readonly node: string;
  readonly store: AgentStore;
  readonly presence: Presence;
  readonly clock: Clock;
  readonly settings: AgentSettings;
  /** Publishes events into a tenant (the hub's publish). */
  readonly publish: (tenant: string, events: EventInput[]) => Promise<unknown>;
  /** Sends a directed message to one node (the bus's send). */
  readonly send: (to: string, message: DirectedMessage) => Promise<void>;
  /** The key to issue an approved agent (see `agents/keys.ts`). */
  readonly issueKey: (tenant: string, agentId: string) => Promise<string>;
  /** Hears each connection a credential change closed (for `/metrics`). */
  readonly onRevoked?: () => void;
}

/** What a registration answers (the body StreamSpace agents read). */
export interface Registration {
  readonly status: 200 | 201 | 202;
  readonly body: JsonObject;
}

/** An agent as `GET /agents` shows it: its registration and, when connected, its connection. */
export interface AgentView extends JsonObject {
  agentId: string;
  platform: string;
  region: string;
  capacity: JsonObject;
  metadata: JsonObject;
  approvalStatus: string;
  registeredAt: string;
  online: boolean;
  node: string | null;
  connectedAt: string | null;
  lastHeartbeat: string | null;
  status: string;
  activeSessions: number | null;
}

/** One connection on this node. */
interface Connection {
  readonly id: string;
  readonly tenant: string;
  readonly agentId: string;
  readonly socket: AgentSocket;
  /** The credential it connected with; replaced when a tokens file reload changes it. */
  principal: Principal;
  readonly connectedAt: number;
  lastHeartbeat: number | null;
  status: string;
  activeSessions: number | null;
  capacity: JsonObject | null;
  /** Commands sent on this connection without an outcome yet. */
  readonly inFlight: Set<string>;
  lastPing: number;
  /** No more frames are handled (closing, replaced or rejected). */
  closed: boolean;
  /** Its end was recorded (once, whoever noticed first: the socket or the registry). */
  ended: boolean;
}

/** A command accepted on this node: it times out here and its waiters wait here. */
interface Pending {
  readonly tenant: string;
  readonly deadline: number;
  readonly waiters: Set<() => void>;
}

/** Directed messages between nodes. */
type AgentMessage =
  | { kind: "agent.command"; tenant: string; agentId: string; command: CommandWire }
  | { kind: "agent.command.done"; tenant: string; commandId: string }
  | {
    kind: "agent.replace";
    tenant: string;
    agentId: string;
    connection: string;
    reason: "replaced" | "rejected";
  };

type CommandWire = { commandId: string; action: string; payload: JsonObject; origin: string };

/** Agent ids: what StreamSpace uses (`k8s-prod-us-east-1`), never one of the route words. */
const AGENT_ID = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;
const RESERVED_IDS = new Set(["register", "connect", "broadcast"]);
/** Actions: a word such as `start_session`. */
const ACTION = /^[A-Za-z][A-Za-z0-9_.:-]{0,63}$/;

/**
 * Checks an agent id, or throws the `bad_message` error a request answers with.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkAgentId } from "./registry.ts";
 * assert.equal(checkAgentId("k8s-prod-us-east-1"), "k8s-prod-us-east-1");
 * assert.throws(() => checkAgentId("connect"), /reserved/);
 * assert.throws(() => checkAgentId("a b"), /agentId/);
 * ```
 */
export function checkAgentId(value: unknown): string {
  if (typeof value !== "string" || !AGENT_ID.test(value)) {
    throw new RequestError(
      ERROR_CODES.badMessage,
      "agentId must be 1-128 letters, digits or ._:@- starting with a letter or digit",
    );
  }
  if (RESERVED_IDS.has(value)) {
    throw new RequestError(ERROR_CODES.badMessage, `agentId "${value}" is reserved`);
  }
  return value;
}

/**
 * The agent a principal is bound to (its credential names one agent), or null when the
 * credential is the hub-wide agent key (any agent id).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { boundAgent } from "./registry.ts";
 * const may = { subscribe: [], publish: false, publishTopics: [], agent: true, control: false, admin: false, tenants: false };
 * assert.equal(boundAgent({ tenant: "t", subject: "agent:k1", may }), "k1");
 * assert.equal(boundAgent({ tenant: "t", subject: "agent", may }), null);
 * ```
 */
export function boundAgent(principal: Principal): string | null {
  return principal.subject.startsWith("agent:") ? principal.subject.slice("agent:".length) : null;
}

/**
 * May this principal command agents and approve them? The `control` scope, or `admin`. In the
 * `none` auth mode the publish token carries it (see docs/security.md).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mayControl } from "./registry.ts";
 * assert.equal(mayControl({ tenant: "t", subject: "x", may: { subscribe: [], publish: true, publishTopics: [], agent: false, control: false, admin: true, tenants: false } }), true);
 * assert.equal(mayControl({ tenant: "t", subject: "x", may: { subscribe: ["*"], publish: false, publishTopics: [], agent: false, control: false, admin: false, tenants: false } }), false);
 * ```
 */
export function mayControl(principal: Principal): boolean {
  return principal.may.control || principal.may.admin;
}

function objectField(body: JsonObject, field: string): JsonObject {
  const value = body[field];
  if (value === undefined || value === null) return {};
  if (!isJsonObject(value)) {
    throw new RequestError(ERROR_CODES.badMessage, `${field} must be an object`);
  }
  return value;
}

function textField(body: JsonObject, field: string, max = 256): string {
  const value = body[field];
  if (value === undefined || value === null) return "";
  if (typeof value !== "string" || value.length > max) {
    throw new RequestError(ERROR_CODES.badMessage, `${field} must be a string of at most ${max}`);
  }
  return value;
}

/**
 * The registry of one node; see the module documentation.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { AgentRegistry } from "./registry.ts";
 * import { MemoryAgentStore } from "./store.ts";
 * import { MemoryPresence } from "../hub/presence/memory.ts";
 * import { systemClock } from "../hub/clock.ts";
 * const events: string[] = [];
 * const registry = new AgentRegistry({
 *   node: "n1",
 *   store: new MemoryAgentStore(100),
 *   presence: new MemoryPresence(),
 *   clock: systemClock,
 *   settings: { approval: "auto", staleMs: 45_000, checkMs: 5_000, pingMs: 30_000,
 *     commandTimeoutMs: 60_000, maxWaitMs: 60_000, stopOnShutdown: false },
 *   publish: (_tenant, inputs) => Promise.resolve(events.push(...inputs.map((e) => e.type))),
 *   send: () => Promise.resolve(),
 *   issueKey: (_tenant, agentId) => Promise.resolve(`key-of-${agentId}`),
 * });
 * const agent = { tenant: "default", subject: "agent", may: { subscribe: [], publish: false, publishTopics: [], agent: true, control: false, admin: false, tenants: false } };
 * const registered = await registry.register(agent, { agentId: "k1", platform: "docker" });
 * assert.equal(registered.status, 201);
 * const sent: string[] = [];
 * await registry.attach(agent, "k1", { send: (text) => sent.push(text), close: () => {} });
 * assert.equal((await registry.view("default", "k1")).online, true);
 * assert.deepEqual(events, ["agent.online"]);
 * ```
 */
export class AgentRegistry {
  readonly #parts: AgentRegistryParts;
  /** This node's connections by tenant and agent id. */
  readonly #connections = new Map<string, Connection>();
  readonly #pending = new Map<string, Pending>();
  #timer: ReturnType<typeof setInterval> | null = null;
  #checking = false;
  /** The last credential change applied (see `reauthorize`); null until one happens. */
  #latestCredentials: Reauthorize | null = null;

  constructor(parts: AgentRegistryParts) {
    this.#parts = parts;
  }

  get settings(): AgentSettings {
    return this.#parts.settings;
  }

  /** Starts the store, presence and the periodic check (staleness, timeouts, dead nodes). */
  async start(): Promise<void> {
    await this.#parts.store.start();
    await this.#parts.presence.start();
    this.#timer = setInterval(() => void this.check(), this.#parts.settings.checkMs);
  }

  // -- Registration ------------------------------------------------------------------------

  /**
   * Creates or refreshes an agent's registration from its `POST /api/v1/agents/register` body.
   * Approved agents get the key issued to them (`apiKey`; only its hash is kept).
   */
  async register(principal: Principal, body: unknown): Promise<Registration> {
    if (!isJsonObject(body)) {
      throw new RequestError(ERROR_CODES.badMessage, "the body must be a JSON object");
    }
    const agentId = checkAgentId(body.agentId);
    const bound = boundAgent(principal);
    if (bound !== null && bound !== agentId) {
      throw new RequestError(ERROR_CODES.forbidden, `this key belongs to agent "${bound}"`);
    }
    const fields = {
      platform: textField(body, "platform"),
      region: textField(body, "region"),
      capacity: objectField(body, "capacity"),
      metadata: objectField(body, "metadata"),
    };
    const tenant = principal.tenant;
    const earlier = await this.#parts.store.get(tenant, agentId);
    const approvalStatus = earlier?.approvalStatus ??
      (this.#parts.settings.approval === "auto" ? "approved" : "pending");
    const key = approvalStatus === "approved" ? await this.#parts.issueKey(tenant, agentId) : null;
    const record: AgentRecord = {
      tenant,
      agentId,
      ...fields,
      approvalStatus,
      keyHash: key === null ? earlier?.keyHash ?? null : await agentKeyHash(key),
      registeredAt: earlier?.registeredAt ?? rfc3339Nano(this.#parts.clock.now()),
    };
    await this.#parts.store.register(record);
    const answer: JsonObject = { agentId, approvalStatus };
    switch (approvalStatus) {
      case "approved":
        return {
          status: earlier === null ? 201 : 200,
          body: {
            ...answer,
            status: "registered",
            apiKey: key,
            message: "registered; connect to /api/v1/agents/connect with this apiKey",
          },
        };
      case "pending":
        return {
          status: 202,
          body: { ...answer, status: "pending", message: "waiting for an administrator" },
        };
      case "rejected":
        return {
          status: 200,
          body: { ...answer, status: "rejected", message: "this agent was rejected" },
        };
    }
  }

  /** Approves or rejects an agent (the admin API); a rejected agent's connection is closed. */
  async decide(tenant: string, agentId: string, approve: boolean): Promise<AgentView> {
    const record = await this.#parts.store.get(tenant, agentId);
    if (record === null) throw notRegistered(agentId);
    await this.#parts.store.register({
      ...record,
      approvalStatus: approve ? "approved" : "rejected",
    });
    if (!approve) {
      const live = await this.#parts.store.getLive(tenant, agentId);
      if (live !== null) {
        if (live.node === this.#parts.node) this.#closeLocal(tenant, agentId, AGENT_CLOSE.rejected);
        else {
          await this.#parts.send(live.node, {
            kind: "agent.replace",
            tenant,
            agentId,
            connection: live.connection,
            reason: "rejected",
          });
        }
      }
    }
    const decision: ApprovalStatus = approve ? "approved" : "rejected";
    log.info("Agent {agentId} {decision} by an administrator", { agentId, tenant, decision });
    return await this.view(tenant, agentId);
  }

  // -- Connections -------------------------------------------------------------------------

  /**
   * May this principal open the agent connection for `agentId`? Throws the error the endpoint
   * answers before upgrading: 404 never registered, 403 pending, rejected or another agent's key.
   */
  async admit(principal: Principal, agentId: string): Promise<void> {
    checkAgentId(agentId);
    const bound = boundAgent(principal);
    if (bound !== null && bound !== agentId) {
      throw new RequestError(ERROR_CODES.forbidden, `this key belongs to agent "${bound}"`);
    }
    const record = await this.#parts.store.get(principal.tenant, agentId);
    if (record === null) throw notRegistered(agentId);
    if (record.approvalStatus !== "approved") {
      throw new RequestError(
        ERROR_CODES.forbidden,
        `agent "${agentId}" is ${record.approvalStatus}`,
      );
    }
  }

  /**
   * Takes an upgraded agent socket: a newer connection replaces an older one (closed with
   * {@linkcode AGENT_CLOSE}`.replaced`), presence and the store learn where the agent is, and
   * `agent.online` is published. `principal` is the credential the agent connected with (its
   * tenant is the connection's). Returns the handlers the socket's events go to.
   */
  async attach(
    principal: Principal,
    agentId: string,
    socket: AgentSocket,
  ): Promise<{ text(data: string): void; closed(): void }> {
    const now = this.#parts.clock.now();
    const tenant = principal.tenant;
    const connection: Connection = {
      id: `${this.#parts.node}/${crypto.randomUUID()}`,
      tenant,
      agentId,
      socket,
      principal,
      connectedAt: now,
      lastHeartbeat: null,
      status: "online",
      activeSessions: null,
      capacity: null,
      inFlight: new Set(),
      lastPing: now,
      closed: false,
      ended: false,
    };
    const key = connectionKey(tenant, agentId);
    const older = this.#connections.get(key);
    this.#connections.set(key, connection);
    if (older !== undefined) {
      // The same agent again: its commands in flight may still be answered on the new socket.
      for (const commandId of older.inFlight) connection.inFlight.add(commandId);
      older.closed = true;
      closeQuietly(older.socket, AGENT_CLOSE.replaced);
    }
    const previous = await this.#parts.store.getLive(tenant, agentId);
    await this.#parts.presence.join({
      tenant,
      connection: connection.id,
      node: this.#parts.node,
      subject: `agent:${agentId}`,
      transport: "agent",
      since: now,
    });
    await this.#parts.store.setLive(tenant, agentId, liveOf(connection, this.#parts.node));
    if (previous !== null && previous.node !== this.#parts.node) {
      await this.#parts.send(previous.node, {
        kind: "agent.replace",
        tenant,
        agentId,
        connection: previous.connection,
        reason: "replaced",
      }).catch(() => {});
    }
    const record = await this.#parts.store.get(tenant, agentId);
    log.info("Agent {agentId} connected", { agentId, tenant, connection: connection.id });
    await this.#event(tenant, "agent.online", {
      agentId,
      node: this.#parts.node,
      platform: record?.platform ?? "",
      region: record?.region ?? "",
      connectedAt: new Date(now).toISOString(),
    });
    // Authenticated before it was recorded: a tokens reload in between has not seen it yet.
    if (this.#latestCredentials !== null) {
      this.#reauthorizeOne(connection, this.#latestCredentials);
    }
    return {
      text: (data) => void this.#frame(connection, data),
      closed: () => void this.#closed(connection, "disconnected"),
    };
  }

  async #frame(connection: Connection, data: string): Promise<void> {
    if (connection.closed) return;
    const frame = decodeAgentFrame(data);
    const { tenant, agentId } = connection;
    try {
      switch (frame.type) {
        case "heartbeat":
          connection.lastHeartbeat = this.#parts.clock.now();
          connection.status = frame.status;
          connection.activeSessions = frame.activeSessions;
          connection.capacity = frame.capacity;
          await this.#parts.store.setLive(tenant, agentId, liveOf(connection, this.#parts.node));
          return;
        case "ack":
          await this.#parts.store.ackCommand(tenant, frame.commandId, this.#parts.clock.now());
          await this.#event(tenant, "agent.command.acked", { agentId, commandId: frame.commandId });
          return;
        case "complete":
          connection.inFlight.delete(frame.commandId);
          await this.#finish(tenant, agentId, frame.commandId, {
            status: "completed",
            at: this.#parts.clock.now(),
            result: frame.result,
          });
          return;
        case "failed":
          connection.inFlight.delete(frame.commandId);
          await this.#finish(tenant, agentId, frame.commandId, {
            status: "failed",
            at: this.#parts.clock.now(),
            error: frame.error,
          });
          return;
        case "status": {
          // Sessions are found by the envelope's sessionId (see "Dialects" in protocol.md).
          const sessionId = frame.payload.sessionId;
          const envelope = typeof sessionId === "string" && sessionId.length > 0 &&
              sessionId.length <= MAX_NAME_LENGTH
            ? { sessionId }
            : {};
          await this.#event(
            tenant,
            "session.state.changed",
            { ...frame.payload, agentId },
            envelope,
          );
          return;
        }
        case "pong":
          return;
        case "vnc":
          // Nobody on a hub asks for VNC tunnels (yet): say so instead of dropping silently.
          connection.socket.send(errorFrame(
            "vnc_unsupported",
            `${frame.kind} is not routed by this hub: VNC tunnels are not supported`,
            this.#parts.clock.now(),
          ));
          return;
        case "invalid":
          connection.socket.send(
            errorFrame(ERROR_CODES.badMessage, frame.reason, this.#parts.clock.now()),
          );
          return;
      }
    } catch (error) {
      log.warn("Agent {agentId}: a frame could not be handled: {error}", {
        agentId,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  /** A connection ended: offline (once, by whoever clears it), its in-flight commands lost. */
  async #closed(connection: Connection, reason: LostReason): Promise<void> {
    if (connection.ended) return;
    connection.ended = true;
    const { tenant, agentId } = connection;
    const key = connectionKey(tenant, agentId);
    const replaced = this.#connections.get(key) !== connection;
    if (!replaced) this.#connections.delete(key);
    connection.closed = true;
    try {
      const cleared = await this.#parts.store.clearLive(tenant, agentId, connection.id);
      await this.#parts.presence.leave(tenant, connection.id);
      if (replaced) return;
      for (const commandId of connection.inFlight) {
        await this.#finish(tenant, agentId, commandId, {
          status: "agent_lost",
          at: this.#parts.clock.now(),
          error: "the agent disconnected before the command finished",
          reason,
        });
      }
      if (cleared) {
        log.info("Agent {agentId} disconnected ({reason})", { agentId, tenant, reason });
        await this.#event(tenant, "agent.offline", { agentId, reason, node: this.#parts.node });
      }
    } catch (error) {
      log.warn("Agent {agentId}: could not record its disconnect: {error}", {
        agentId,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  #closeLocal(tenant: string, agentId: string, close: { code: number; reason: string }): void {
    const connection = this.#connections.get(connectionKey(tenant, agentId));
    if (connection === undefined) return;
    closeQuietly(connection.socket, close);
    void this.#closed(connection, close === AGENT_CLOSE.rejected ? "rejected" : "disconnected");
  }

  // -- Commands ----------------------------------------------------------------------------

  /**
   * Sends a command to an agent wherever it is connected. Fails fast: `not_found` for an agent
   * never registered, `agent_offline` (409) for one not connected.
   */
  async command(
    principal: Principal,
    agentId: string,
    body: unknown,
  ): Promise<CommandRecord> {
    const { action, payload } = commandBody(body);
    const tenant = principal.tenant;
    const record = await this.#parts.store.get(tenant, agentId);
    if (record === null) throw notRegistered(agentId);
    const live = await this.#liveAgent(tenant, agentId);
    if (live === null) {
      throw new RequestError(ERROR_CODES.agentOffline, `agent "${agentId}" is not connected`);
    }
    return await this.#dispatch(tenant, agentId, live, action, payload);
  }

  /** Sends a command to every connected agent of the principal's tenant but `exclude`. */
  async broadcast(principal: Principal, body: unknown): Promise<JsonObject> {
    const { action, payload } = commandBody(body);
    const exclude = isJsonObject(body) && typeof body.exclude === "string" ? body.exclude : null;
    const tenant = principal.tenant;
    const sent: JsonValue[] = [];
    for (const [agentId, live] of await this.#liveAgents(tenant)) {
      if (agentId === exclude) continue;
      const command = await this.#dispatch(tenant, agentId, live, action, payload);
      sent.push({ agentId, commandId: command.commandId });
    }
    return { sent };
  }

  async #dispatch(
    tenant: string,
    agentId: string,
    live: LiveAgent,
    action: string,
    payload: JsonObject,
  ): Promise<CommandRecord> {
    const now = this.#parts.clock.now();
    const command: CommandRecord = {
      tenant,
      commandId: crypto.randomUUID(),
      agentId,
      action,
      payload,
      origin: this.#parts.node,
      holder: live.node,
      createdAt: now,
      deadline: now + this.#parts.settings.commandTimeoutMs,
      status: "sent",
      ackedAt: null,
      finishedAt: null,
      result: null,
      error: null,
      reason: null,
    };
    await this.#parts.store.putCommand(command);
    this.#pending.set(commandKey(tenant, command.commandId), {
      tenant,
      deadline: command.deadline,
      waiters: new Set(),
    });
    const wire: CommandWire = {
      commandId: command.commandId,
      action,
      payload,
      origin: this.#parts.node,
    };
    if (live.node === this.#parts.node) await this.#deliver(tenant, agentId, wire);
    else {
      await this.#parts.send(live.node, { kind: "agent.command", tenant, agentId, command: wire });
    }
    await this.#event(tenant, "agent.command.sent", {
      agentId,
      commandId: command.commandId,
      action,
    });
    return command;
  }

  /** On the holding node: writes the command to the agent's socket, or reports it lost. */
  async #deliver(tenant: string, agentId: string, command: CommandWire): Promise<void> {
    const connection = this.#connections.get(connectionKey(tenant, agentId));
    if (connection === undefined || connection.closed) {
      await this.#finish(tenant, agentId, command.commandId, {
        status: "agent_lost",
        at: this.#parts.clock.now(),
        error: "the agent was no longer connected when the command arrived",
        reason: "disconnected",
      });
      return;
    }
    connection.inFlight.add(command.commandId);
    connection.socket.send(
      commandFrame(command.commandId, command.action, command.payload, this.#parts.clock.now()),
    );
  }

  /**
   * Records a command's outcome and tells the node that accepted it; true when this outcome was
   * the first (the others change nothing).
   */
  async #finish(
    tenant: string,
    agentId: string,
    commandId: string,
    outcome: CommandOutcome,
  ): Promise<boolean> {
    if (!await this.#parts.store.finishCommand(tenant, commandId, outcome)) return false;
    // Waiters first: they should not wait for the event's trip through history and bus.
    const command = await this.#parts.store.getCommand(tenant, commandId);
    if (command?.origin === this.#parts.node) this.#settled(tenant, commandId);
    else if (command !== null) {
      await this.#parts.send(command.origin, { kind: "agent.command.done", tenant, commandId })
        .catch(() => {});
    }
    await this.#event(tenant, `agent.command.${outcome.status}`, {
      agentId,
      commandId,
      ...(outcome.result !== undefined && { result: outcome.result }),
      ...(outcome.error !== undefined && { error: outcome.error }),
      ...(outcome.reason !== undefined && { reason: outcome.reason }),
    });
    return true;
  }

  #settled(tenant: string, commandId: string): void {
    const key = commandKey(tenant, commandId);
    const pending = this.#pending.get(key);
    this.#pending.delete(key);
    for (const wake of pending?.waiters ?? []) wake();
  }

  /** A command's record; `not_found` when unknown (or forgotten). */
  async commandStatus(tenant: string, agentId: string, commandId: string): Promise<CommandRecord> {
    const command = await this.#parts.store.getCommand(tenant, commandId);
    if (command === null || command.agentId !== agentId) {
      throw new RequestError(ERROR_CODES.notFound, `no command "${commandId}" for "${agentId}"`);
    }
    return command;
  }

  /** Waits up to `ms` for a command accepted on this node to finish; answers its record. */
  async waitFor(
    tenant: string,
    agentId: string,
    commandId: string,
    ms: number,
  ): Promise<CommandRecord> {
    const pending = this.#pending.get(commandKey(tenant, commandId));
    if (pending !== undefined) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          pending!.waiters.delete(done);
          resolve();
        }
        pending.waiters.add(done);
      });
    }
    return await this.commandStatus(tenant, agentId, commandId);
  }

  // -- Reads -------------------------------------------------------------------------------

  /** Every registered agent of a tenant with its connection, by id. */
  async list(tenant: string): Promise<AgentView[]> {
    const live = await this.#liveAgents(tenant);
    const records = await this.#parts.store.list(tenant);
    return records
      .sort((a, b) => a.agentId < b.agentId ? -1 : a.agentId > b.agentId ? 1 : 0)
      .map((record) => viewOf(record, live.get(record.agentId) ?? null));
  }

  /** One agent; `not_found` when never registered. */
  async view(tenant: string, agentId: string): Promise<AgentView> {
    const record = await this.#parts.store.get(tenant, agentId);
    if (record === null) throw notRegistered(agentId);
    return viewOf(record, await this.#liveAgent(tenant, agentId));
  }

  /** The agent's live connection when its node is alive. */
  async #liveAgent(tenant: string, agentId: string): Promise<LiveAgent | null> {
    const live = await this.#parts.store.getLive(tenant, agentId);
    if (live === null) return null;
    if (live.node === this.#parts.node) {
      return this.#connections.get(connectionKey(tenant, agentId))?.id === live.connection
        ? live
        : null;
    }
    return await this.#parts.presence.find(tenant, live.connection) === null ? null : live;
  }

  async #liveAgents(tenant: string): Promise<Map<string, LiveAgent>> {
    const all = await this.#parts.store.listLive(tenant);
    const alive = new Set(
      (await this.#parts.presence.list(tenant)).map((entry) => entry.connection),
    );
    return new Map([...all].filter(([, live]) => alive.has(live.connection)));
  }

  // -- Directed messages and the periodic check ---------------------------------------------

  /** A directed message from another node (the hub hands it over). */
  message(_from: string, message: DirectedMessage): void {
    const typed = message as unknown as AgentMessage;
    switch (typed.kind) {
      case "agent.command":
        void this.#deliver(typed.tenant, typed.agentId, typed.command).catch((error) =>
          log.warn("Could not deliver a command: {error}", { error: String(error) })
        );
        return;
      case "agent.command.done":
        this.#settled(typed.tenant, typed.commandId);
        return;
      case "agent.replace": {
        const connection = this.#connections.get(connectionKey(typed.tenant, typed.agentId));
        if (connection?.id !== typed.connection) return;
        if (typed.reason === "rejected") {
          this.#closeLocal(typed.tenant, typed.agentId, AGENT_CLOSE.rejected);
        } else {
          this.#connections.delete(connectionKey(typed.tenant, typed.agentId));
          connection.closed = true;
          closeQuietly(connection.socket, AGENT_CLOSE.replaced);
          void this.#parts.presence.leave(typed.tenant, connection.id).catch(() => {});
        }
        return;
      }
    }
  }

  /**
   * One round of the periodic check: closes this node's stale agents, times out this node's
   * commands, and reports offline the agents of nodes that died (whichever node clears them
   * first publishes `agent.offline`), the commands they held `agent_lost` and the commands they
   * accepted, past their deadline, `timed_out` (whichever node finishes each first). Exported
   * for tests with a manual clock.
   */
  async check(): Promise<void> {
    if (this.#checking) return;
    this.#checking = true;
    try {
      const now = this.#parts.clock.now();
      const pingMs = this.#parts.settings.pingMs;
      for (const connection of [...this.#connections.values()]) {
        if (pingMs > 0 && now - connection.lastPing >= pingMs) {
          connection.lastPing = now;
          try {
            connection.socket.send(pingFrame(now));
          } catch {
            // Closing: its close handler reports it.
          }
        }
        const since = connection.lastHeartbeat ?? connection.connectedAt;
        if (now - since <= this.#parts.settings.staleMs) continue;
        const { tenant, agentId } = connection;
        log.info("Agent {agentId} is stale: no heartbeat for {ms} ms", {
          agentId,
          tenant,
          ms: now - since,
        });
        await this.#event(tenant, "agent.stale", {
          agentId,
          lastHeartbeat: connection.lastHeartbeat === null
            ? null
            : new Date(connection.lastHeartbeat).toISOString(),
        });
        closeQuietly(connection.socket, AGENT_CLOSE.stale);
        await this.#closed(connection, "stale");
      }
      for (const [key, pending] of [...this.#pending]) {
        if (now <= pending.deadline) continue;
        const commandId = key.slice(key.indexOf("\u0000") + 1);
        const command = await this.#parts.store.getCommand(pending.tenant, commandId);
        if (command === null || FINAL_STATUSES.has(command.status)) {
          this.#settled(pending.tenant, commandId);
          continue;
        }
        await this.#timeOut(command, now);
        this.#settled(pending.tenant, commandId);
      }
      await this.#sweepDeadNodes();
      await this.#loseCommandsOfDeadNodes(now);
      await this.#timeOutCommandsOfDeadOrigins(now);
    } catch (error) {
      log.warn("The agent check failed: {error}", {
        error: error instanceof Error ? error.message : String(error),
      });
    } finally {
      this.#checking = false;
    }
  }

  async #sweepDeadNodes(): Promise<void> {
    for (const tenant of await this.#parts.store.tenants()) {
      const all = await this.#parts.store.listLive(tenant);
      if (all.size === 0) continue;
      const alive = new Set(
        (await this.#parts.presence.list(tenant)).map((entry) => entry.connection),
      );
      for (const [agentId, live] of all) {
        if (live.node === this.#parts.node || alive.has(live.connection)) continue;
        if (!await this.#parts.store.clearLive(tenant, agentId, live.connection)) continue;
        log.info("Agent {agentId} is offline: its node {node} stopped answering", {
          agentId,
          tenant,
          node: live.node,
        });
        await this.#event(tenant, "agent.offline", {
          agentId,
          reason: "node_lost",
          node: live.node,
        });
      }
    }
  }

  /**
   * The commands held by nodes that died (sent to their agents, no outcome yet) become
   * `agent_lost` with reason `node_lost`: their agents' connections died with the node, so no
   * outcome can come back through it. The store's first-outcome-wins makes each happen once
   * however many nodes sweep.
   */
  async #loseCommandsOfDeadNodes(now: number): Promise<void> {
    const lost = await this.#settleCommandsOfDeadNodes(
      "holder",
      (command) =>
        this.#finish(command.tenant, command.agentId, command.commandId, {
          status: "agent_lost",
          at: now,
          error: "the node holding the agent's connection stopped answering",
          reason: "node_lost",
        }),
    );
    for (const [node, count] of lost) {
      log.info("{count} commands in flight on node {node} are agent_lost: it stopped answering", {
        count,
        node,
      });
    }
  }

  /**
   * The commands accepted by nodes that died are `timed_out` once their deadline passes, by
   * whichever surviving node finishes each first: their origin is no longer there to do it.
   */
  async #timeOutCommandsOfDeadOrigins(now: number): Promise<void> {
    const timedOut = await this.#settleCommandsOfDeadNodes(
      "origin",
      (command) => now <= command.deadline ? Promise.resolve(false) : this.#timeOut(command, now),
    );
    for (const [node, count] of timedOut) {
      log.info("{count} commands accepted by node {node} timed out: it stopped answering", {
        count,
        node,
      });
    }
  }

  /**
   * Applies `settle` to each command without an outcome whose `role` is a node that died (not
   * this one); answers, by node, how many `settle` finished first.
   */
  async #settleCommandsOfDeadNodes(
    role: CommandNodeRole,
    settle: (command: CommandRecord) => Promise<boolean>,
  ): Promise<Map<string, number>> {
    const settled = new Map<string, number>();
    const nodes = (await this.#parts.store.commandNodes(role))
      .filter((node) => node !== this.#parts.node);
    if (nodes.length === 0) return settled;
    const live = await this.#parts.presence.liveNodes(nodes);
    for (const node of nodes) {
      if (live.has(node)) continue;
      let count = 0;
      for (const { tenant, commandId } of await this.#parts.store.unfinishedCommands(role, node)) {
        const command = await this.#parts.store.getCommand(tenant, commandId);
        if (command === null || FINAL_STATUSES.has(command.status)) continue;
        if (await settle(command)) count++;
      }
      if (count > 0) settled.set(node, count);
    }
    return settled;
  }

  /** Times a command out (true when that was its first outcome). */
  #timeOut(command: CommandRecord, now: number): Promise<boolean> {
    for (const connection of this.#connections.values()) {
      connection.inFlight.delete(command.commandId);
    }
    return this.#finish(command.tenant, command.agentId, command.commandId, {
      status: "timed_out",
      at: now,
      error: `no outcome within ${this.#parts.settings.commandTimeoutMs} ms`,
    });
  }

  // -- Shutdown ----------------------------------------------------------------------------

  /**
   * Applies changed credentials (a tokens file reload) to this node's agent connections: one
   * whose credential was revoked, moved to another tenant or lost the `agent` scope is closed
   * with 4001 and goes offline; any other keeps going under its new principal. Returns how many
   * were closed.
   */
  reauthorize(reauthorize: Reauthorize): number {
    this.#latestCredentials = reauthorize;
    let closed = 0;
    for (const connection of [...this.#connections.values()]) {
      if (this.#reauthorizeOne(connection, reauthorize)) closed++;
    }
    return closed;
  }

  /** True when the change closed `connection`. */
  #reauthorizeOne(connection: Connection, reauthorize: Reauthorize): boolean {
    const before = connection.principal;
    const after = reauthorize(before);
    if (after === before || connection.closed) return false;
    if (after !== null && after.tenant === before.tenant && after.may.agent) {
      connection.principal = after;
      return false;
    }
    closeQuietly(
      connection.socket,
      after === null ? DISCONNECT.tokenRevoked : DISCONNECT.tokenNarrowed,
    );
    void this.#closed(connection, "revoked");
    this.#parts.onRevoked?.();
    return true;
  }

  /**
   * Closes every agent connection of this node with 1001 (agents reconnect), after a
   * `shutdown` frame when {@linkcode AgentSettings.stopOnShutdown} asks agents to stop for good.
   */
  drain(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    for (const connection of [...this.#connections.values()]) {
      if (this.#parts.settings.stopOnShutdown) {
        try {
          connection.socket.send(shutdownFrame("the hub is stopping for good"));
        } catch {
          // Already closing.
        }
      }
      closeQuietly(connection.socket, AGENT_CLOSE.shutdown);
    }
  }

  /**
   * Closes this node's agents (see {@linkcode AgentRegistry.drain}), then presence (removing
   * this node's entries) and the store.
   */
  async close(): Promise<void> {
    this.drain();
    for (const pending of this.#pending.values()) for (const wake of pending.waiters) wake();
    this.#pending.clear();
    await this.#parts.presence.close();
    await this.#parts.store.close();
  }

  /** Agents connected to this node (for metrics and tests). */
  get connectedHere(): number {
    return this.#connections.size;
  }

  async #event(
    tenant: string,
    type: string,
    payload: JsonObject,
    envelope: { sessionId?: string } = {},
  ): Promise<void> {
    try {
      await this.#parts.publish(tenant, [{ type, payload, ...envelope }]);
    } catch (error) {
      log.warn("Could not publish {type}: {error}", {
        type,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }
}

function commandBody(body: unknown): { action: string; payload: JsonObject } {
  if (!isJsonObject(body)) {
    throw new RequestError(ERROR_CODES.badMessage, "the body must be a JSON object");
  }
  if (typeof body.action !== "string" || !ACTION.test(body.action)) {
    throw new RequestError(
      ERROR_CODES.badMessage,
      "action must be a word of letters, digits and _.:- such as start_session",
    );
  }
  return { action: body.action, payload: objectField(body, "payload") };
}

function notRegistered(agentId: string): RequestError {
  return new RequestError(ERROR_CODES.notFound, `agent "${agentId}" is not registered`);
}

function connectionKey(tenant: string, agentId: string): string {
  return `${tenant}\u0000${agentId}`;
}

const commandKey = connectionKey;

function liveOf(connection: Connection, node: string): LiveAgent {
  return {
    connection: connection.id,
    node,
    connectedAt: connection.connectedAt,
    lastHeartbeat: connection.lastHeartbeat,
    status: connection.status,
    activeSessions: connection.activeSessions,
    capacity: connection.capacity,
  };
}

function viewOf(record: AgentRecord, live: LiveAgent | null): AgentView {
  const iso = (ms: number | null) => ms === null ? null : new Date(ms).toISOString();
  return {
    agentId: record.agentId,
    platform: record.platform,
    region: record.region,
    capacity: live?.capacity ?? record.capacity,
    metadata: record.metadata,
    approvalStatus: record.approvalStatus,
    registeredAt: record.registeredAt,
    online: live !== null,
    node: live?.node ?? null,
    connectedAt: iso(live?.connectedAt ?? null),
    lastHeartbeat: iso(live?.lastHeartbeat ?? null),
    status: live?.status ?? "offline",
    activeSessions: live?.activeSessions ?? null,
  };
}

function closeQuietly(socket: AgentSocket, close: { code: number; reason: string }): void {
  try {
    socket.close(close.code, close.reason);
  } catch {
    // Already closed.
  }
}
