/**
 * The Redis history: shared by every node, so a client can resume on another node than the
 * one it lost, and durable as far as the Redis server is (its epoch is kept in Redis).
 *
 * Keys: `herald:history:epoch`, per tenant `herald:history:{tenant}:head` (newest cursor
 * number, never expires) and `herald:history:{tenant}:events` (a sorted set scored by cursor
 * number; members are `<store time ms>|<frame>`), plus the set `herald:history:tenants`.
 * A batch is appended by one Lua script that bumps the head and adds the events together, so
 * every node sees cursors and events appear at once and no cursor is handed out twice. Frames
 * are built here with an empty `seq` and completed in the script. Count retention trims in
 * the same script; age retention is checked on read and bounds the key with `PEXPIRE`.
 * Uses its own connection (node-redis); a failed command rejects with
 * {@linkcode HistoryUnavailableError}.
 * @module
 */

import type { RedisClientType } from "redis";
import type { Clock } from "./clock.ts";
import {
  collectPage,
  encodeFrameAt,
  type EventDraft,
  formatCursor,
  type History,
  type HistoryPage,
  type HistoryQuery,
  HistoryUnavailableError,
  newEpoch,
  type RawEntry,
  type StoredEvent,
  windowFor,
} from "./history.ts";
import type { RetentionLimits } from "./history_memory.ts";

const SEQ_HOLE = '"seq":""';
/** Entries fetched per round trip while reading. */
const PAGE = 1000;

/**
 * KEYS: head, events, tenants. ARGV: epoch, tenant, now, maxEvents, ttlMs, then a prefix and a
 * suffix per event (the frame around its seq). Returns the new head.
 */
const APPEND_SCRIPT = `
local count = (#ARGV - 5) / 2
local last = redis.call('INCRBY', KEYS[1], count)
local first = last - count + 1
for i = 0, count - 1 do
  local n = first + i
  local frame = ARGV[6 + 2 * i] .. ARGV[1] .. '-' .. n .. ARGV[7 + 2 * i]
  redis.call('ZADD', KEYS[2], n, ARGV[3] .. '|' .. frame)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', last - tonumber(ARGV[4]))
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('SADD', KEYS[3], ARGV[2])
return last
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
      socket: { reconnectStrategy: (retries) => Math.min(retries * 50, 1000) },
    }) as RedisClientType;
    // Errors surface as rejected commands; without a listener node-redis would throw them.
    this.#redis.on("error", () => {});
    await this.#client.connect();
    const key = `${this.#prefix}:epoch`;
    await this.#client.set(key, newEpoch(), { condition: "NX" });
    const epoch = await this.#client.get(key);
    if (epoch === null) throw new HistoryUnavailableError("Redis lost the history epoch");
    this.#epoch = epoch;
  }

  append(tenant: string, drafts: readonly EventDraft[]): Promise<StoredEvent[]> {
    const result = this.#tail.then(() => this.#append(tenant, drafts));
    this.#tail = result.catch(() => {});
    return result;
  }

  async #append(tenant: string, drafts: readonly EventDraft[]): Promise<StoredEvent[]> {
    const pieces: string[] = [];
    for (const [index, draft] of drafts.entries()) {
      const template = encodeFrameAt({ ...draft, seq: "" }, index);
      const hole = template.lastIndexOf(SEQ_HOLE) + SEQ_HOLE.length - 1;
      pieces.push(template.slice(0, hole), template.slice(hole));
    }
    const last = Number(
      await this.#call(() =>
        this.#client.eval(APPEND_SCRIPT, {
          keys: [this.#key(tenant, "head"), this.#key(tenant, "events"), `${this.#prefix}:tenants`],
          arguments: [
            this.#epoch,
            tenant,
            String(this.#clock.now()),
            String(this.#limits.maxEvents),
            String(this.#limits.ttlMs),
            ...pieces,
          ],
        })
      ),
    );
    const first = last - drafts.length + 1;
    return drafts.map((draft, index) => {
      const seq = formatCursor(this.#epoch, first + index);
      const frame = pieces[2 * index]! + seq + pieces[2 * index + 1]!;
      return { event: { ...draft, seq }, frame };
    });
  }

  async read(tenant: string, query: HistoryQuery): Promise<HistoryPage> {
    const last = Number(await this.#call(() => this.#client.get(this.#key(tenant, "head"))) ?? 0);
    const place = windowFor(query.since, this.#epoch, last, this.#limits, this.#clock.now());
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
      const reply = await this.#call(() =>
        this.#client.sendCommand([
          "ZRANGE",
          key,
          String(from),
          "+inf",
          "BYSCORE",
          "LIMIT",
          "0",
          String(PAGE),
          "WITHSCORES",
        ])
      ) as string[];
      for (let index = 0; index < reply.length; index += 2) {
        const member = reply[index]!;
        const bar = member.indexOf("|");
        const n = Number(reply[index + 1]);
        yield { n, storedAt: Number(member.slice(0, bar)), frame: member.slice(bar + 1) };
        from = n + 1;
      }
      if (reply.length < PAGE * 2) return;
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
