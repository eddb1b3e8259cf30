/**
 * The agent store shared by every node through Redis.
 *
 * Keys (`<t>` is `<tenant length>:<tenant>`): `<prefix>:agents:<t>` hash agentId -> record;
 * `<prefix>:agents-live:<t>` hash agentId -> live connection; `<prefix>:agents:tenants` set of
 * tenants; `<prefix>:agent-command:<t>:<commandId>` hash with fields `command`, `acked`,
 * `outcome`, expiring `commandTtlMs` after creation; `<prefix>:agent-commands-held:<node>`
 * sorted set of the commands without an outcome that node holds (member `<t>:<commandId>`,
 * score the record's expiry) and `<prefix>:agent-command-holders` set of those nodes;
 * `<prefix>:agent-commands-accepted:<node>` and `<prefix>:agent-command-origins` the same for
 * the node that accepted each command.
 * `clearLive` is a compare-and-delete script and `finishCommand` a script around `HSETNX`, so
 * exactly one node wins each.
 * @module
 */

import { createClient } from "redis";
import type {
  AgentRecord,
  AgentStore,
  CommandNodeRole,
  CommandOutcome,
  CommandRecord,
  CommandRef,
  LiveAgent,
} from "./store.ts";
import { COMMAND_NODE_ROLES, withProgress } from "./store.ts";

type Client = ReturnType<typeof createClient>;

/** Deletes the live entry only while it names the given connection. */
const CLEAR_LIVE_SCRIPT = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return 0 end
if cjson.decode(current).connection ~= ARGV[2] then return 0 end
return redis.call('HDEL', KEYS[1], ARGV[1])`;

/**
 * Sets the outcome of a command that exists and has none, and drops it from its holder's and
 * its origin's sets.
 */
const FINISH_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HSETNX', KEYS[1], 'outcome', ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
return 1`;

/** Forgets a node in a role's node set once its command set is gone (empty), atomically. */
const FORGET_NODE_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[1]) end
return 0`;

/** Options of {@linkcode RedisAgentStore}. */
export interface RedisAgentStoreOptions {
  readonly url: string;
  readonly prefix: string;
  /** How long a command's record is kept. */
  readonly commandTtlMs: number;
}

/** Redis-backed {@linkcode AgentStore}. */
export class RedisAgentStore implements AgentStore {
  readonly kind = "redis";
  readonly #options: RedisAgentStoreOptions;
  readonly #client: Client;

  constructor(options: RedisAgentStoreOptions) {
    this.#options = options;
    this.#client = createClient({ url: options.url, disableOfflineQueue: true });
    // Reported by the calls that fail (503); the client reconnects by itself.
    this.#client.on("error", () => {});
  }

  #key(kind: string, tenant: string): string {
    return `${this.#options.prefix}:${kind}:${tenant.length}:${tenant}`;
  }

  #commandKey(tenant: string, commandId: string): string {
    return `${this.#key("agent-command", tenant)}:${commandId}`;
  }

  /** The sorted set of the commands without an outcome whose `role` is `node`. */
  #unfinishedKey(role: CommandNodeRole, node: string): string {
    const kind = role === "holder" ? "agent-commands-held" : "agent-commands-accepted";
    return `${this.#options.prefix}:${kind}:${node}`;
  }

  /** The set of the nodes with such commands in `role`. */
  #nodesKey(role: CommandNodeRole): string {
    const kind = role === "holder" ? "agent-command-holders" : "agent-command-origins";
    return `${this.#options.prefix}:${kind}`;
  }

  async start(): Promise<void> {
    await this.#client.connect();
  }

  async register(record: AgentRecord): Promise<void> {
    await this.#client.hSet(
      this.#key("agents", record.tenant),
      record.agentId,
      JSON.stringify(record),
    );
    await this.#client.sAdd(`${this.#options.prefix}:agents:tenants`, record.tenant);
  }

  async get(tenant: string, agentId: string): Promise<AgentRecord | null> {
    const text = await this.#client.hGet(this.#key("agents", tenant), agentId);
    return typeof text === "string" ? JSON.parse(text) as AgentRecord : null;
  }

  async list(tenant: string): Promise<AgentRecord[]> {
    const all = await this.#client.hGetAll(this.#key("agents", tenant));
    return Object.values(all).map((text) => JSON.parse(text) as AgentRecord);
  }

  async tenants(): Promise<string[]> {
    return await this.#client.sMembers(`${this.#options.prefix}:agents:tenants`);
  }

  async setLive(tenant: string, agentId: string, live: LiveAgent): Promise<void> {
    await this.#client.hSet(this.#key("agents-live", tenant), agentId, JSON.stringify(live));
  }

  async getLive(tenant: string, agentId: string): Promise<LiveAgent | null> {
    const text = await this.#client.hGet(this.#key("agents-live", tenant), agentId);
    return typeof text === "string" ? JSON.parse(text) as LiveAgent : null;
  }

  async listLive(tenant: string): Promise<Map<string, LiveAgent>> {
    const all = await this.#client.hGetAll(this.#key("agents-live", tenant));
    return new Map(Object.entries(all).map(([id, text]) => [id, JSON.parse(text) as LiveAgent]));
  }

  async clearLive(tenant: string, agentId: string, connection: string): Promise<boolean> {
    const removed = await this.#client.eval(CLEAR_LIVE_SCRIPT, {
      keys: [this.#key("agents-live", tenant)],
      arguments: [agentId, connection],
    });
    return removed === 1;
  }

  async putCommand(command: CommandRecord): Promise<void> {
    const key = this.#commandKey(command.tenant, command.commandId);
    const expiry = command.createdAt + this.#options.commandTtlMs;
    const multi = this.#client.multi()
      .hSet(key, "command", JSON.stringify(command))
      .pExpire(key, this.#options.commandTtlMs);
    for (const role of COMMAND_NODE_ROLES) {
      const unfinished = this.#unfinishedKey(role, command[role]);
      multi.zAdd(unfinished, { score: expiry, value: indexMember(command) })
        // Commands whose record expired without an outcome.
        .zRemRangeByScore(unfinished, "-inf", command.createdAt)
        .sAdd(this.#nodesKey(role), command[role]);
    }
    await multi.exec();
  }

  async getCommand(tenant: string, commandId: string): Promise<CommandRecord | null> {
    const fields = await this.#client.hGetAll(this.#commandKey(tenant, commandId));
    if (fields.command === undefined) return null;
    return withProgress(
      JSON.parse(fields.command) as CommandRecord,
      fields.acked === undefined ? null : Number(fields.acked),
      fields.outcome === undefined ? null : JSON.parse(fields.outcome) as CommandOutcome,
    );
  }

  async ackCommand(tenant: string, commandId: string, at: number): Promise<void> {
    const key = this.#commandKey(tenant, commandId);
    // Only for a command that exists: an ack for an expired one must not create a key.
    if (await this.#client.exists(key) === 1) await this.#client.hSetNX(key, "acked", String(at));
  }

  async finishCommand(
    tenant: string,
    commandId: string,
    outcome: CommandOutcome,
  ): Promise<boolean> {
    const key = this.#commandKey(tenant, commandId);
    const text = await this.#client.hGet(key, "command");
    if (typeof text !== "string") return false;
    const command = JSON.parse(text) as CommandRecord;
    const finished = await this.#client.eval(FINISH_SCRIPT, {
      keys: [
        key,
        this.#unfinishedKey("holder", command.holder),
        this.#unfinishedKey("origin", command.origin),
      ],
      arguments: [JSON.stringify(outcome), indexMember(command)],
    });
    return finished === 1;
  }

  async commandNodes(role: CommandNodeRole): Promise<string[]> {
    return await this.#client.sMembers(this.#nodesKey(role));
  }

  async unfinishedCommands(role: CommandNodeRole, node: string): Promise<CommandRef[]> {
    const unfinished = this.#unfinishedKey(role, node);
    const members = await this.#client.zRange(unfinished, 0, -1);
    const refs = members.map(parseIndexMember);
    const exists = refs.length === 0 ? [] : await Promise.all(
      refs.map((ref) => this.#client.exists(this.#commandKey(ref.tenant, ref.commandId))),
    );
    const gone = members.filter((_, index) => exists[index] !== 1);
    if (gone.length > 0) await this.#client.zRem(unfinished, gone);
    if (gone.length === members.length) {
      await this.#client.eval(FORGET_NODE_SCRIPT, {
        keys: [unfinished, this.#nodesKey(role)],
        arguments: [node],
      });
    }
    return refs.filter((_, index) => exists[index] === 1);
  }

  close(): Promise<void> {
    this.#client.destroy();
    return Promise.resolve();
  }
}

/** A command in its holder's and origin's sets: `<tenant length>:<tenant>:<commandId>`. */
function indexMember(command: CommandRef): string {
  return `${command.tenant.length}:${command.tenant}:${command.commandId}`;
}

function parseIndexMember(member: string): CommandRef {
  const colon = member.indexOf(":");
  const length = Number(member.slice(0, colon));
  const tenant = member.slice(colon + 1, colon + 1 + length);
  return { tenant, commandId: member.slice(colon + 2 + length) };
}
