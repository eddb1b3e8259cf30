/**
 * The Redis history: shared by every node, so a client can resume on another node than the
 * one it lost, and durable as far as the Redis server is (its epoch is kept in Redis).
 *
 * Keys: `herald:history:epoch` and `herald:history:epoch:run`, per tenant
 * `herald:history:{tenant}:head` (newest cursor number, never expires),
 * `herald:history:{tenant}:epoch` (the epoch that head counts in) and
 * `herald:history:{tenant}:events` (a sorted set scored by cursor number; members are
 * `<store time ms>|<frame>`, an empty frame for an event discarded because its publish failed),
 * plus the set `herald:history:tenants`.
 * A batch is appended by one Lua script that bumps the head and adds the events together, so
 * every node sees cursors and events appear at once and no cursor is handed out twice. Frames
 * are built here with an empty `seq` and completed in the script. Count retention trims in
 * the same script; age retention is checked on read and bounds the key with `PEXPIRE`.
 * Uses its own connection (node-redis); a failed command rejects with
 * {@linkcode HistoryUnavailableError}.
 *
 * A cursor is never handed out twice, even when Redis loses data. The epoch key names the Redis
 * server process (its `run_id`, kept in `herald:history:epoch:run`) that holds this epoch's
 * data. Every script first checks it: when the server restarted (without persistence the epoch
 * key is gone; with persistence it may have restored an older snapshot or lost the last second
 * of its AOF, so heads may have gone back), the first script to notice starts a new epoch, and
 * every node takes the epoch the script returns, so all nodes agree on it. Each tenant's keys
 * carry the epoch they count in (`herald:history:{tenant}:epoch`); a tenant still on an older
 * epoch starts again from 1. Resuming with a cursor of the old epoch answers `recovered: false`,
 * reason `epoch`. Herald cannot tell a complete restore from a partial one, so any restart of
 * the Redis server starts a new epoch.
 *
 * A command that failed must not take effect later (a publish answered 503 is stored nowhere):
 * the client does not queue commands while disconnected (`disableOfflineQueue`), and the append
 * script carries a deadline in Redis time (half the timeout after sending) that it checks
 * against `TIME` before writing anything, so a command still in flight when the hub gave up
 * does nothing if Redis runs it late.
 * @module
 */

import type { RedisClientType } from "redis";
import { encodeEventFrameAround } from "../../events/envelope.ts";
import type { Clock } from "../clock.ts";
import {
  encodingAt,
  type EventDraft,
  formatCursor,
  type History,
  type HistoryPage,
  type HistoryQuery,
  HistoryUnavailableError,
  newEpoch,
  parseCursor,
  type StoredEvent,
} from "./history.ts";
import { collectPage, type RawEntry, windowFor } from "./_durable.ts";
import type { RetentionLimits } from "./memory.ts";

/** Entries fetched per round trip while reading. */
const PAGE = 1000;

/**
 * Lua that every script starts with: `epoch(epochKey, runKey, candidate)` returns the current
 * epoch, starting `candidate` as a new one when the Redis server is not the process that holds
 * the current one (it restarted, so its data may be older than the cursors handed out).
 * `tenantEpoch(headKey, eventsKey, tenantEpochKey, epoch)` empties a tenant counted in an older
 * epoch. `late(deadline)` is true once Redis' clock passed `deadline` (ms).
 */
const PRELUDE = `
local function epoch(epochKey, runKey, candidate)
  local run = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
  local current = redis.call('GET', epochKey)
  if current and redis.call('GET', runKey) == run then return current end
  redis.call('SET', epochKey, candidate)
  redis.call('SET', runKey, run)
  return candidate
end
local function tenantEpoch(headKey, eventsKey, tenantEpochKey, current)
  if redis.call('GET', tenantEpochKey) == current then return true end
  redis.call('DEL', headKey, eventsKey)
  redis.call('SET', tenantEpochKey, current)
  return false
end
local function late(deadline)
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) > tonumber(deadline)
end
`;

/**
 * KEYS: head, events, tenants, epoch, epoch run, tenant epoch. ARGV: epoch candidate, tenant,
 * now, maxEvents, ttlMs, deadline (Redis ms), then a prefix and a suffix per event (the frame
 * around its seq). Returns the new head and the epoch, or `{0, ''}` when Redis ran it after the
 * deadline (nothing was written).
 */
const APPEND_SCRIPT = `${PRELUDE}
if late(ARGV[6]) then return {0, ''} end
local current = epoch(KEYS[4], KEYS[5], ARGV[1])
tenantEpoch(KEYS[1], KEYS[2], KEYS[6], current)
local count = (#ARGV - 6) / 2
local last = redis.call('INCRBY', KEYS[1], count)
local first = last - count + 1
for i = 0, count - 1 do
  local n = first + i
  local frame = ARGV[7 + 2 * i] .. current .. '-' .. n .. ARGV[8 + 2 * i]
  redis.call('ZADD', KEYS[2], n, ARGV[3] .. '|' .. frame)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', last - tonumber(ARGV[4]))
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('SADD', KEYS[3], ARGV[2])
return {last, current}
`;

/**
 * KEYS: head, events, epoch, epoch run, tenant epoch. ARGV: epoch candidate. Returns the epoch
 * and the tenant's head in it (0 when the tenant has nothing in this epoch).
 */
const HEAD_SCRIPT = `${PRELUDE}
local current = epoch(KEYS[3], KEYS[4], ARGV[1])
if not tenantEpoch(KEYS[1], KEYS[2], KEYS[5], current) then return {current, 0} end
return {current, tonumber(redis.call('GET', KEYS[1]) or '0')}
`;

/**
 * KEYS: events, epoch, tenant epoch. ARGV: epoch, now, then cursor numbers. Replaces each
 * event still stored in that epoch with an empty frame (discarded); nothing when the epoch moved on.
 */
const DISCARD_SCRIPT = `
if redis.call('GET', KEYS[2]) ~= ARGV[1] or redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
for i = 3, #ARGV do
  if redis.call('ZREMRANGEBYSCORE', KEYS[1], ARGV[i], ARGV[i]) > 0 then
    redis.call('ZADD', KEYS[1], ARGV[i], ARGV[2] .. '|')
  end
end
return 1
`;

/** KEYS: epoch, epoch run. ARGV: epoch candidate. Returns the epoch. */
const EPOCH_SCRIPT = `${PRELUDE}
return epoch(KEYS[1], KEYS[2], ARGV[1])
`;

/** Redis-backed {@linkcode History}. */
export class RedisHistory implements History {
  readonly kind = "redis";
  readonly shared = true;
  readonly #limits: RetentionLimits;
  readonly #clock: Clock;
  /** Created in `start`: the client library is loaded only when a Redis history is used. */
  #redis: RedisClientType | null = null;
  readonly #url: string;
  /** Every key starts with `<HERALD_REDIS_PREFIX>:history`, so deployments can share a Redis. */
  readonly #prefix: string;
  #epoch = "";
  /** Redis' clock minus this process's (ms), measured on every connect. */
  #clockOffsetMs = 0;
  #tail: Promise<unknown> = Promise.resolve();

  readonly #timeoutMs: number;

  /** `timeoutMs`: a command not answered in this time fails (the server may be gone). */
  constructor(
    limits: RetentionLimits,
    clock: Clock,
    url: string,
    timeoutMs: number,
    prefix = "herald",
  ) {
    this.#limits = limits;
    this.#clock = clock;
    this.#timeoutMs = timeoutMs;
    this.#url = url;
    this.#prefix = `${prefix}:history`;
  }

  get #client(): RedisClientType {
    if (this.#redis === null) throw new HistoryUnavailableError("The Redis history is not started");
    return this.#redis;
  }

  get epoch(): string {
    return this.#epoch;
  }

  async start(): Promise<void> {
    const { createClient } = await import("redis");
    this.#redis = createClient({
      url: this.#url,
      // A command sent while disconnected fails at once instead of running when Redis returns.
      disableOfflineQueue: true,
      socket: { reconnectStrategy: (retries) => Math.min(retries * 50, 1000) },
    }) as RedisClientType;
    // Errors surface as rejected commands; without a listener node-redis would throw them.
    this.#redis.on("error", () => {});
    this.#redis.on("ready", () => void this.#measureClock().catch(() => {}));
    await this.#client.connect();
    await this.#measureClock();
    this.#epoch = String(
      await this.#call(() =>
        this.#client.eval(EPOCH_SCRIPT, { keys: this.#epochKeys(), arguments: [newEpoch()] })
      ),
    );
  }

  /** Redis' clock minus this process's, so a deadline can be stated in Redis time. */
  async #measureClock(): Promise<void> {
    const before = Date.now();
    const [seconds, micros] = await this.#client.sendCommand(["TIME"]) as [string, string];
    const after = Date.now();
    const redisMs = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    this.#clockOffsetMs = redisMs - Math.round((before + after) / 2);
  }

  #epochKeys(): string[] {
    return [`${this.#prefix}:epoch`, `${this.#prefix}:epoch:run`];
  }

  #tenantKeys(tenant: string): string[] {
    return [this.#key(tenant, "head"), this.#key(tenant, "events")];
  }

  append(tenant: string, drafts: readonly EventDraft[]): Promise<StoredEvent[]> {
    const result = this.#tail.then(() => this.#append(tenant, drafts));
    this.#tail = result.catch(() => {});
    return result;
  }

  async #append(tenant: string, drafts: readonly EventDraft[]): Promise<StoredEvent[]> {
    const pieces: string[] = [];
    for (const [index, draft] of drafts.entries()) {
      pieces.push(...encodingAt(index, () => encodeEventFrameAround(draft)));
    }
    // Half the timeout to start, half for the reply: a late run writes nothing.
    const deadline = Date.now() + this.#clockOffsetMs + Math.floor(this.#timeoutMs / 2);
    const [head, epoch] = await this.#call(() =>
      this.#client.eval(APPEND_SCRIPT, {
        keys: [
          ...this.#tenantKeys(tenant),
          `${this.#prefix}:tenants`,
          ...this.#epochKeys(),
          this.#key(tenant, "epoch"),
        ],
        arguments: [
          newEpoch(),
          tenant,
          String(this.#clock.now()),
          String(this.#limits.maxEvents),
          String(this.#limits.ttlMs),
          String(deadline),
          ...pieces,
        ],
      })
    ) as [number, string];
    if (epoch === "") {
      throw new HistoryUnavailableError("Redis ran the append after its deadline; nothing stored");
    }
    this.#epoch = epoch;
    const last = Number(head);
    const first = last - drafts.length + 1;
    return drafts.map((draft, index) => {
      const seq = formatCursor(epoch, first + index);
      const frame = pieces[2 * index]! + seq + pieces[2 * index + 1]!;
      return { event: { ...draft, seq }, frame };
    });
  }

  async read(tenant: string, query: HistoryQuery): Promise<HistoryPage> {
    const [epoch, head] = await this.#call(() =>
      this.#client.eval(HEAD_SCRIPT, {
        keys: [...this.#tenantKeys(tenant), ...this.#epochKeys(), this.#key(tenant, "epoch")],
        arguments: [newEpoch()],
      })
    ) as [string, number];
    this.#epoch = epoch;
    const last = Number(head);
    const place = windowFor(query.since, epoch, last, this.#limits, this.#clock.now());
    if ("lost" in place) return { state: "lost", reason: place.lost };
    return await collectPage(
      this.#entries(tenant, place.after),
      tenant,
      query,
      place.after,
      place.window,
    );
  }

  async *#entries(tenant: string, after: number): AsyncGenerator<RawEntry> {
    const key = this.#key(tenant, "events");
    let from = after + 1;
    for (;;) {
      // The typed command, not a raw ZRANGE: node-redis 6 speaks RESP3, where WITHSCORES
      // replies are pairs instead of RESP2's flat list; this shape is the same under both.
      const reply = await this.#call(() =>
        this.#client.zRangeWithScores(key, from, "+inf", {
          BY: "SCORE",
          LIMIT: { offset: 0, count: PAGE },
        })
      );
      for (const { value: member, score: n } of reply) {
        const bar = member.indexOf("|");
        yield { n, storedAt: Number(member.slice(0, bar)), frame: member.slice(bar + 1) };
        from = n + 1;
      }
      if (reply.length < PAGE) return;
    }
  }

  async discard(tenant: string, seqs: readonly string[]): Promise<void> {
    const byEpoch = new Map<string, string[]>();
    for (const seq of seqs) {
      const cursor = parseCursor(seq);
      if (cursor === null) continue;
      byEpoch.set(cursor.epoch, [...(byEpoch.get(cursor.epoch) ?? []), String(cursor.n)]);
    }
    for (const [epoch, numbers] of byEpoch) {
      await this.#call(() =>
        this.#client.eval(DISCARD_SCRIPT, {
          keys: [this.#key(tenant, "events"), this.#epochKeys()[0]!, this.#key(tenant, "epoch")],
          arguments: [epoch, String(this.#clock.now()), ...numbers],
        })
      );
    }
  }

  async tenants(): Promise<string[]> {
    return await this.#call(() => this.#client.sMembers(`${this.#prefix}:tenants`));
  }

  async close(): Promise<void> {
    const client = this.#redis;
    if (client === null) return;
    if (client.isReady) await client.close();
    else if (client.isOpen) client.destroy();
  }

  #key(tenant: string, part: string): string {
    return `${this.#prefix}:{${tenant}}:${part}`;
  }

  async #call<T>(command: () => Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer within ${this.#timeoutMs} ms`)),
        this.#timeoutMs,
      );
    });
    try {
      return await Promise.race([command(), timeout]);
    } catch (error) {
      throw new HistoryUnavailableError(`The Redis history failed: ${error}`);
    } finally {
      clearTimeout(timer);
    }
  }
}
