/**
 * The agent store: registrations, who holds each agent's live connection, and commands. Every
 * node reads and writes it, so an agent may register on one node, connect to a second and be
 * commanded from a third.
 *
 * Contract every implementation documents against:
 * - `register` creates or replaces an agent's record; `get`/`list` never answer for another
 *   tenant.
 * - `setLive` records the connection that holds an agent now (the newest wins);
 *   `clearLive(tenant, agentId, connection)` removes it only while that connection still holds
 *   it, and answers true for exactly one caller: the one that reports the agent offline.
 * - Commands: `putCommand` stores one, `ackCommand` marks it acknowledged, `finishCommand`
 *   sets its outcome and answers true for the first outcome only (complete, failed, timed out
 *   or lost: whichever comes first wins, on any node).
 * - Each command without an outcome is indexed under its `holder` (the node it was sent to) and
 *   its `origin` (the node that accepted it), so that when a node dies another can find what it
 *   held or was to time out: `commandNodes(role)` lists the nodes with such commands in that
 *   role, `unfinishedCommands(role, node)` the commands (and forgets a node that has none).
 *   `finishCommand` removes a command from both indexes; they forget commands whose record was
 *   forgotten.
 * - Failure: calls reject when the store is unreachable; callers answer 503.
 * @module
 */

import type { JsonObject } from "../events/json.ts";

/** Whether a registered agent may connect. */
export type ApprovalStatus = "approved" | "pending" | "rejected";

/** A registered agent. */
export interface AgentRecord {
  readonly tenant: string;
  readonly agentId: string;
  readonly platform: string;
  readonly region: string;
  readonly capacity: JsonObject;
  readonly metadata: JsonObject;
  readonly approvalStatus: ApprovalStatus;
  /** SHA-256 (hex) of the key issued to this agent, or null when none was issued. */
  readonly keyHash: string | null;
  /** RFC 3339. */
  readonly registeredAt: string;
}

/** The connection that holds an agent now, and what its heartbeats said. */
export interface LiveAgent {
  readonly connection: string;
  /** The node holding the connection: where commands for the agent go. */
  readonly node: string;
  /** Milliseconds since the epoch. */
  readonly connectedAt: number;
  readonly lastHeartbeat: number | null;
  /** What the last heartbeat reported (`online` until one arrives). */
  readonly status: string;
  readonly activeSessions: number | null;
  readonly capacity: JsonObject | null;
}

/** Where a command is. `sent`, `acked`: in flight; the others are final. */
export type CommandStatus =
  | "sent"
  | "acked"
  | "completed"
  | "failed"
  | "timed_out"
  | "agent_lost";

/** The final statuses. */
export const FINAL_STATUSES: ReadonlySet<CommandStatus> = new Set([
  "completed",
  "failed",
  "timed_out",
  "agent_lost",
]);

/** A command as stored: what was asked, and what became of it. */
export interface CommandRecord {
  readonly tenant: string;
  readonly commandId: string;
  readonly agentId: string;
  readonly action: string;
  readonly payload: JsonObject;
  /**
   * The node that accepted the command: it times it out and answers waiters (should it die,
   * the surviving nodes time it out).
   */
  readonly origin: string;
  /** The node holding the agent's connection when the command was sent: it delivers it. */
  readonly holder: string;
  readonly createdAt: number;
  /** When it times out, in milliseconds since the epoch. */
  readonly deadline: number;
  readonly status: CommandStatus;
  readonly ackedAt: number | null;
  readonly finishedAt: number | null;
  readonly result: JsonObject | null;
  readonly error: string | null;
  /** Why an `agent_lost` command was lost (see {@linkcode LOST_REASONS}); null otherwise. */
  readonly reason: LostReason | null;
}

/**
 * Why a command was `agent_lost`: its agent's connection ended (`disconnected`, `stale`,
 * `rejected`; the same words as `agent.offline`), or the node holding it died (`node_lost`).
 */
export const LOST_REASONS = ["disconnected", "stale", "rejected", "revoked", "node_lost"] as const;

/** One of {@linkcode LOST_REASONS}. */
export type LostReason = typeof LOST_REASONS[number];

/** The nodes a command without an outcome is indexed under: see {@linkcode CommandRecord}. */
export type CommandNodeRole = "holder" | "origin";

/** Both roles. */
export const COMMAND_NODE_ROLES: readonly CommandNodeRole[] = ["holder", "origin"];

/** A command named by its tenant and id. */
export interface CommandRef {
  readonly tenant: string;
  readonly commandId: string;
}

/** A final outcome. */
export interface CommandOutcome {
  readonly status: "completed" | "failed" | "timed_out" | "agent_lost";
  readonly at: number;
  readonly result?: JsonObject;
  readonly error?: string;
  /** Set for `agent_lost`. */
  readonly reason?: LostReason;
}

/** Registrations, live connections and commands. */
export interface AgentStore {
  /** `memory` or `redis`. */
  readonly kind: string;
  start(): Promise<void>;
  register(record: AgentRecord): Promise<void>;
  get(tenant: string, agentId: string): Promise<AgentRecord | null>;
  list(tenant: string): Promise<AgentRecord[]>;
  /** Tenants with at least one registered agent. */
  tenants(): Promise<string[]>;
  setLive(tenant: string, agentId: string, live: LiveAgent): Promise<void>;
  getLive(tenant: string, agentId: string): Promise<LiveAgent | null>;
  listLive(tenant: string): Promise<Map<string, LiveAgent>>;
  clearLive(tenant: string, agentId: string, connection: string): Promise<boolean>;
  putCommand(command: CommandRecord): Promise<void>;
  getCommand(tenant: string, commandId: string): Promise<CommandRecord | null>;
  ackCommand(tenant: string, commandId: string, at: number): Promise<void>;
  finishCommand(tenant: string, commandId: string, outcome: CommandOutcome): Promise<boolean>;
  /** The nodes that are `role` of commands without an outcome. */
  commandNodes(role: CommandNodeRole): Promise<string[]>;
  /** The commands without an outcome `node` is `role` of; forgets `node` when there are none. */
  unfinishedCommands(role: CommandNodeRole, node: string): Promise<CommandRef[]>;
  close(): Promise<void>;
}

/**
 * Applies what a store keeps beside a command (its acknowledgement and outcome) to the record.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { withProgress } from "./store.ts";
 * const base = { tenant: "t", commandId: "c", agentId: "a", action: "x", payload: {}, origin: "n",
 *   holder: "n", createdAt: 0, deadline: 10, status: "sent", ackedAt: null, finishedAt: null,
 *   result: null, error: null, reason: null } as const;
 * assert.equal(withProgress(base, 5, null).status, "acked");
 * assert.equal(withProgress(base, 5, { status: "failed", at: 6, error: "no" }).error, "no");
 * ```
 */
export function withProgress(
  command: CommandRecord,
  ackedAt: number | null,
  outcome: CommandOutcome | null,
): CommandRecord {
  return {
    ...command,
    status: outcome?.status ?? (ackedAt !== null ? "acked" : command.status),
    ackedAt,
    finishedAt: outcome?.at ?? null,
    result: outcome?.result ?? null,
    error: outcome?.error ?? null,
    reason: outcome?.reason ?? null,
  };
}

/**
 * The store of one process. Limits: single node only (its records die with the process); it
 * keeps at most `maxCommands` commands, forgetting the oldest.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryAgentStore } from "./store.ts";
 * const store = new MemoryAgentStore(10);
 * const live = { connection: "c1", node: "n", connectedAt: 0, lastHeartbeat: null, status: "online", activeSessions: null, capacity: null };
 * await store.setLive("t", "a1", live);
 * assert.equal(await store.clearLive("t", "a1", "old"), false);
 * assert.equal(await store.clearLive("t", "a1", "c1"), true);
 * assert.equal(await store.clearLive("t", "a1", "c1"), false);
 * ```
 */
export class MemoryAgentStore implements AgentStore {
  readonly kind = "memory";
  readonly #maxCommands: number;
  readonly #agents = new Map<string, Map<string, AgentRecord>>();
  readonly #live = new Map<string, Map<string, LiveAgent>>();
  readonly #commands = new Map<
    string,
    { command: CommandRecord; ackedAt: number | null; outcome: CommandOutcome | null }
  >();
  /** The commands without an outcome, by role, then by node, then by key. */
  readonly #unfinished: Record<CommandNodeRole, Map<string, Map<string, CommandRef>>> = {
    holder: new Map(),
    origin: new Map(),
  };

  constructor(maxCommands: number) {
    this.#maxCommands = maxCommands;
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  register(record: AgentRecord): Promise<void> {
    innerMap(this.#agents, record.tenant).set(record.agentId, record);
    return Promise.resolve();
  }

  get(tenant: string, agentId: string): Promise<AgentRecord | null> {
    return Promise.resolve(this.#agents.get(tenant)?.get(agentId) ?? null);
  }

  list(tenant: string): Promise<AgentRecord[]> {
    return Promise.resolve([...(this.#agents.get(tenant)?.values() ?? [])]);
  }

  tenants(): Promise<string[]> {
    return Promise.resolve([...this.#agents.keys()]);
  }

  setLive(tenant: string, agentId: string, live: LiveAgent): Promise<void> {
    innerMap(this.#live, tenant).set(agentId, live);
    return Promise.resolve();
  }

  getLive(tenant: string, agentId: string): Promise<LiveAgent | null> {
    return Promise.resolve(this.#live.get(tenant)?.get(agentId) ?? null);
  }

  listLive(tenant: string): Promise<Map<string, LiveAgent>> {
    return Promise.resolve(new Map(this.#live.get(tenant) ?? []));
  }

  clearLive(tenant: string, agentId: string, connection: string): Promise<boolean> {
    const live = this.#live.get(tenant);
    if (live?.get(agentId)?.connection !== connection) return Promise.resolve(false);
    live.delete(agentId);
    return Promise.resolve(true);
  }

  putCommand(command: CommandRecord): Promise<void> {
    const key = commandKey(command.tenant, command.commandId);
    this.#commands.set(key, { command, ackedAt: null, outcome: null });
    for (const role of COMMAND_NODE_ROLES) {
      innerMap(this.#unfinished[role], command[role]).set(key, command);
    }
    for (const [oldest, entry] of this.#commands) {
      if (this.#commands.size <= this.#maxCommands) break;
      this.#commands.delete(oldest);
      this.#forgetUnfinished(entry.command, oldest);
    }
    return Promise.resolve();
  }

  getCommand(tenant: string, commandId: string): Promise<CommandRecord | null> {
    const entry = this.#commands.get(commandKey(tenant, commandId));
    if (entry === undefined) return Promise.resolve(null);
    return Promise.resolve(withProgress(entry.command, entry.ackedAt, entry.outcome));
  }

  ackCommand(tenant: string, commandId: string, at: number): Promise<void> {
    const entry = this.#commands.get(commandKey(tenant, commandId));
    if (entry !== undefined && entry.ackedAt === null) entry.ackedAt = at;
    return Promise.resolve();
  }

  finishCommand(tenant: string, commandId: string, outcome: CommandOutcome): Promise<boolean> {
    const entry = this.#commands.get(commandKey(tenant, commandId));
    if (entry === undefined || entry.outcome !== null) return Promise.resolve(false);
    entry.outcome = outcome;
    this.#forgetUnfinished(entry.command, commandKey(tenant, commandId));
    return Promise.resolve(true);
  }

  #forgetUnfinished(command: CommandRecord, key: string): void {
    for (const role of COMMAND_NODE_ROLES) this.#unfinished[role].get(command[role])?.delete(key);
  }

  commandNodes(role: CommandNodeRole): Promise<string[]> {
    return Promise.resolve([...this.#unfinished[role].keys()]);
  }

  unfinishedCommands(role: CommandNodeRole, node: string): Promise<CommandRef[]> {
    const byNode = this.#unfinished[role];
    const commands = byNode.get(node);
    if (commands?.size === 0) byNode.delete(node);
    return Promise.resolve([...(commands?.values() ?? [])].map(({ tenant, commandId }) => ({
      tenant,
      commandId,
    })));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

function innerMap<T>(maps: Map<string, Map<string, T>>, outer: string): Map<string, T> {
  let map = maps.get(outer);
  if (map === undefined) {
    map = new Map();
    maps.set(outer, map);
  }
  return map;
}

function commandKey(tenant: string, commandId: string): string {
  return `${tenant}\u0000${commandId}`;
}
