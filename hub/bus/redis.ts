/**
 * The `redis` bus: several processes or machines share events through one Redis server.
 *
 * Why a Redis Stream and not pub/sub: a stream is a shared, ordered, replayable log. Every
 * node appends to one stream (`<prefix>:bus`) and reads it with `XREAD` from the last entry
 * it processed, so
 * - all nodes see the entries in one total order (the stream's), which gives the ordering
 *   guarantee below even when a producer's requests land on different nodes;
 * - a reader that loses its connection for a moment resumes where it stopped instead of
 *   silently losing what was published meanwhile (pub/sub drops it);
 * - the log the history issue needs (resume from a cursor) is already there, bounded by
 *   `MAXLEN ~ streamMaxLen`.
 * The cost is memory in Redis for the retained entries and one stream for all tenants.
 *
 * Contract (see `bus.ts`):
 * - Publishing runs one Lua script, atomically: for each keyed event it claims the
 *   idempotency key `<prefix>:idem:<tenant>:<id>` with `SET NX PX <ttl>` (value: the seq);
 *   an id another node claimed first is not appended and its earlier seq comes back. The
 *   other events are appended as entries of at most `maxBatch` events, each with its origin
 *   node `o`, the origin's event counter `n`, the flush token `b`, the events `e` (JSON) and
 *   the keyed flags `k`. Either all of that happens or none of it.
 * - `publish` resolves once this node's own reader has passed the appended entries: every
 *   entry before them (from any node) was handed to the receiver first. A producer that
 *   waits for 202 before publishing again therefore gets per-producer order on every node.
 * - No echo: the reader skips entries whose origin is this node, except entries of a flush
 *   whose outcome was unknown (connection lost or timeout after sending): those were
 *   committed after all, so they are delivered here when read.
 * - Gaps: `n` jumps when entries were trimmed before a slow reader read them, or when Redis
 *   lost them (restart without persistence). The receiver is told how many events it missed.
 * - Outage: while the connection is down, `ready` is false and `publish` rejects at once with
 *   `BusUnavailableError` (nothing was sent). Commands are never queued while disconnected
 *   (`disableOfflineQueue`), and the script carries a deadline in Redis time (half the timeout
 *   after sending) checked against `TIME` before it writes: a publish the node gave up on does
 *   nothing if Redis runs it late, so a 503 is not delivered later. node-redis reconnects with exponential backoff
 *   (`reconnectMinMs` doubling up to `reconnectMaxMs`) and the reader resumes from its last
 *   entry. A publish whose reply does not come within `publishTimeoutMs` rejects too.
 *
 * Limits: one Redis server (no Cluster); the idempotency record and the origin counters live
 * in Redis, so a Redis restart without persistence forgets them (a retry after it is
 * accepted as new unless the node it lands on still remembers the id locally). A publish Redis
 * ran in time whose reply was lost is answered 503 yet delivered (through the uncertain tokens
 * above); its retry is answered with the original seq and not delivered again.
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { createClient } from "redis";
import type { HeraldEvent } from "../../events/envelope.ts";
import { type EarlierByIndex, OriginTracker, TickBatcher } from "./_common.ts";
import { RedisInbox } from "./_redis_inbox.ts";
import { BusUnavailableError } from "./bus.ts";
import type { Bus, BusReceiver, DirectedMessage, EarlierAcceptances } from "./bus.ts";
import type { Acceptance } from "../idempotency.ts";

const log = getLogger(["herald", "bus"]);

/** How long one `XREAD` blocks before it is sent again (also bounds noticing a dead socket). */
const READ_BLOCK_MS = 2_000;
/** How long a node's event counter is kept in Redis after its last publish. */
const ORIGIN_TTL_MS = 86_400_000;
/** Flush tokens of unknown outcome remembered (oldest forgotten first). */
const MAX_UNCERTAIN = 1_000;

/**
 * Claims idempotency keys and appends the rest, atomically.
 * KEYS: stream, origin counter, idempotency keys. ARGV: origin, the origin's counter as the
 * node knows it, flush token, idempotency ttl (ms), stream maxlen, events per entry, deadline
 * (Redis ms), then per event: index of its idempotency key in KEYS after the first two (0 = not
 * keyed), seq, JSON. Returns: id of the last entry appended ('' if none), the origin's counter
 * after it, and pairs (event index, earlier seq); or `{'', -1, {}}` without writing anything
 * when Redis runs it after the deadline (the node already gave up on it and answered 503).
 */
const PUBLISH_SCRIPT = `
local time = redis.call('TIME')
if tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) > tonumber(ARGV[7]) then
  return {'', -1, {}}
end
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'stream' and kind ~= 'none' then
  return redis.error_reply('WRONGTYPE ' .. KEYS[1] .. ' is not a stream; nothing was written')
end
local n = math.max(tonumber(redis.call('GET', KEYS[2]) or '0'), tonumber(ARGV[2]))
local earlier, parts, flags, count, last = {}, {}, {}, 0, ''
local function append()
  if count == 0 then return end
  last = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[5], '*', 'o', ARGV[1], 'n', n,
    'b', ARGV[3], 'e', '[' .. table.concat(parts, ',') .. ']', 'k', table.concat(flags))
  n = n + count
  parts, flags, count = {}, {}, 0
end
local index = 0
for i = 8, #ARGV, 3 do
  local k = tonumber(ARGV[i])
  local fresh = true
  if k > 0 then
    local key = KEYS[2 + k]
    if not redis.call('SET', key, ARGV[i + 1], 'NX', 'PX', ARGV[4]) then
      fresh = false
      earlier[#earlier + 1] = index
      earlier[#earlier + 1] = redis.call('GET', key)
    end
  end
  if fresh then
    count = count + 1
    parts[count] = ARGV[i + 2]
    flags[count] = k > 0 and '1' or '0'
    if count >= tonumber(ARGV[6]) then append() end
  end
  index = index + 1
end
append()
redis.call('SET', KEYS[2], n, 'PX', ${ORIGIN_TTL_MS})
return {last, n, earlier}
`;

/** Options of {@linkcode RedisBus}. */
export interface RedisBusOptions {
  /** This node's id (unique per process start). */
  readonly node: string;
  readonly url: string;
  /** Prefix of every key. */
  readonly prefix: string;
  /** Most events in one stream entry. */
  readonly maxBatch: number;
  readonly publishTimeoutMs: number;
  readonly reconnectMinMs: number;
  readonly reconnectMaxMs: number;
  readonly streamMaxLen: number;
  /** How long a keyed id is claimed (the idempotency window). */
  readonly idempotencyTtlMs: number;
}

/** One stream entry as node-redis returns it. */
interface StreamEntry {
  readonly id: string;
  readonly message: Record<string, string>;
}

type Client = ReturnType<typeof createClient>;

/** The epoch part of a cursor `<epoch>-<n>`, or null. */
function epochOf(seq: string | undefined): string | null {
  const dash = seq?.lastIndexOf("-") ?? -1;
  return dash > 0 ? seq!.slice(0, dash) : null;
}

/** Orders stream ids `<ms>-<seq>`. */
function compareIds(a: string, b: string): number {
  const [aMs, aSeq] = a.split("-").map(Number) as [number, number];
  const [bMs, bSeq] = b.split("-").map(Number) as [number, number];
  return aMs - bMs || aSeq - bSeq;
}

/** Fans events out through a Redis Stream. */
export class RedisBus implements Bus {
  readonly kind = "redis";
  readonly #options: RedisBusOptions;
  readonly #stream: string;
  readonly #originKey: string;
  readonly #writer: Client;
  readonly #reader: Client;
  readonly #batcher: TickBatcher;
  /** Directed messages: a pub/sub channel per node (see `_redis_inbox.ts`). */
  readonly #inbox: RedisInbox;
  readonly #origins = new OriginTracker();
  /** The history epoch of the last event received from each origin. */
  readonly #originEpochs = new Map<string, string>();
  readonly #uncertain = new Set<string>();
  readonly #fences: { readonly id: string; readonly resolve: () => void }[] = [];
  readonly #stop = new AbortController();
  #receiver: BusReceiver | null = null;
  /** Last stream entry this node processed; null until the reader found the stream's tail. */
  #readId: string | null = null;
  /** The origin counter as of the last confirmed publish. */
  #sent = 0;
  #flushes = 0;
  #backoffMs: number;
  #reading: Promise<void> = Promise.resolve();
  #outage = false;
  /** Redis' clock minus this process's (ms), measured whenever the writer connects. */
  #clockOffsetMs = 0;
  #lagMs = 0;

  constructor(options: RedisBusOptions) {
    this.#options = options;
    this.#stream = `${options.prefix}:bus`;
    this.#originKey = `${options.prefix}:bus:origin:${options.node}`;
    this.#backoffMs = options.reconnectMinMs;
    this.#writer = createClient({
      url: options.url,
      disableOfflineQueue: true,
      socket: {
        reconnectStrategy: (retries: number) => {
          this.#backoffMs = Math.min(
            options.reconnectMinMs * 2 ** Math.min(retries, 20),
            options.reconnectMaxMs,
          );
          return this.#backoffMs;
        },
      },
    });
    this.#reader = this.#writer.duplicate();
    this.#writer.on("error", (error: Error) => this.#noteError(error));
    this.#reader.on("error", (error: Error) => this.#noteError(error));
    this.#writer.on("ready", () => {
      this.#noteReady();
      void this.#measureClock();
    });
    this.#reader.on("ready", () => this.#noteReady());
    this.#batcher = new TickBatcher((events, keyed) => this.#send(events, keyed), options.maxBatch);
    this.#inbox = new RedisInbox(this.#writer, options.prefix, options.node);
  }

  get node(): string {
    return this.#options.node;
  }

  get ready(): boolean {
    return this.#writer.isReady && this.#reader.isReady && this.#readId !== null;
  }

  /**
   * Age of the newest entry of the last batch read, in Redis' clock (entry ids start with the
   * millisecond Redis added them); 0 when a read found nothing new.
   */
  get lagMs(): number {
    return this.#lagMs;
  }

  /** Connects in the background (retrying with backoff) and starts reading. */
  start(receiver: BusReceiver): Promise<void> {
    this.#receiver = receiver;
    const connect = (client: Client) =>
      client.connect().catch((error: Error) => {
        if (!this.#stop.signal.aborted) {
          log.error("Redis bus gave up connecting: {error}", { error });
        }
      });
    void connect(this.#writer);
    this.#reading = connect(this.#reader).then(() => this.#readLoop());
    void this.#inbox.start(receiver);
    return Promise.resolve();
  }

  publish(events: readonly HeraldEvent[], keyed: ReadonlySet<string>): Promise<EarlierAcceptances> {
    if (!this.ready) return Promise.reject(this.#unavailable());
    return this.#batcher.add(events, keyed);
  }

  send(to: string, message: DirectedMessage): Promise<void> {
    return this.#inbox.send(to, message);
  }

  async close(): Promise<void> {
    this.#stop.abort();
    this.#inbox.close();
    this.#batcher.cancel(new BusUnavailableError("The Redis bus is closing"));
    for (const client of [this.#reader, this.#writer]) {
      try {
        client.destroy();
      } catch {
        // Never connected.
      }
    }
    await this.#reading;
  }

  /** Measures Redis' clock against this process's, so a deadline can be stated in Redis time. */
  async #measureClock(): Promise<void> {
    try {
      const before = Date.now();
      const [seconds, micros] = await this.#writer.sendCommand(["TIME"]) as [string, string];
      const after = Date.now();
      const redisMs = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
      this.#clockOffsetMs = redisMs - Math.round((before + after) / 2);
    } catch {
      // Measured again on the next connect.
    }
  }

  #unavailable(): BusUnavailableError {
    return new BusUnavailableError(
      "The event bus (Redis) is unreachable; retry later",
      Math.max(1, Math.ceil(this.#backoffMs / 1000)),
    );
  }

  #noteError(error: Error): void {
    if (this.#stop.signal.aborted || this.#outage) return;
    this.#outage = true;
    log.warn("Redis bus unreachable ({error}); publishes get 503 while it reconnects", {
      error: error.message,
    });
  }

  #noteReady(): void {
    if (!this.#outage || !this.#writer.isReady || !this.#reader.isReady) return;
    this.#outage = false;
    this.#backoffMs = this.#options.reconnectMinMs;
    log.info("Redis bus reconnected");
  }

  #idempotencyKey(event: HeraldEvent): string {
    return `${this.#options.prefix}:idem:${event.tenant.length}:${event.tenant}:${event.id}`;
  }

  async #send(events: readonly HeraldEvent[], keyed: readonly boolean[]): Promise<EarlierByIndex> {
    if (!this.ready) throw this.#unavailable();
    const options = this.#options;
    const token = String(++this.#flushes);
    const keys = [this.#stream, this.#originKey];
    const args = [
      options.node,
      String(this.#sent),
      token,
      String(options.idempotencyTtlMs),
      String(options.streamMaxLen),
      String(options.maxBatch),
      // Half the timeout to start, half for the reply: a late run writes nothing.
      String(Date.now() + this.#clockOffsetMs + Math.floor(options.publishTimeoutMs / 2)),
    ];
    events.forEach((event, index) => {
      if (keyed[index]) {
        keys.push(this.#idempotencyKey(event));
        args.push(String(keys.length - 2));
      } else {
        args.push("0");
      }
      args.push(event.seq, JSON.stringify(event));
    });
    const deadline = Date.now() + options.publishTimeoutMs;
    let reply: [string, number, (number | string)[]];
    try {
      reply = await this.#within(
        this.#writer.eval(PUBLISH_SCRIPT, { keys, arguments: args }) as Promise<typeof reply>,
        deadline,
      );
    } catch (error) {
      // Sent but unconfirmed: it may be in the stream; if so, deliver it here when read.
      this.#rememberUncertain(token);
      log.warn("Redis bus publish failed: {error}", { error: (error as Error).message });
      throw this.#unavailable();
    }
    const [last, counter, pairs] = reply;
    if (Number(counter) < 0) {
      log.warn("Redis bus publish ran after its deadline; nothing was appended");
      throw this.#unavailable();
    }
    this.#sent = Number(counter);
    const earlier = new Map<number, Acceptance>();
    for (let index = 0; index < pairs.length; index += 2) {
      const at = Number(pairs[index]);
      earlier.set(at, { id: events[at]!.id, seq: String(pairs[index + 1]) });
    }
    if (last !== "") {
      try {
        await this.#within(this.#passed(last), deadline);
      } catch {
        this.#rememberUncertain(token);
        throw this.#unavailable();
      }
    }
    return earlier;
  }

  #rememberUncertain(token: string): void {
    this.#uncertain.add(token);
    if (this.#uncertain.size > MAX_UNCERTAIN) {
      this.#uncertain.delete(this.#uncertain.values().next().value!);
    }
  }

  /** Resolves once the reader processed entry `id`. */
  #passed(id: string): Promise<void> {
    if (this.#readId !== null && compareIds(this.#readId, id) >= 0) return Promise.resolve();
    return new Promise((resolve) => this.#fences.push({ id, resolve }));
  }

  #within<T>(promise: Promise<T>, deadline: number): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error("no reply from Redis in time")),
        Math.max(0, deadline - Date.now()),
      );
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }

  async #readLoop(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      try {
        if (!this.#reader.isReady) {
          await this.#pause(this.#options.reconnectMinMs);
          continue;
        }
        // redis@6 types the range reply as nullable (RESP3 null); an empty stream reads from 0-0.
        this.#readId ??=
          (await this.#reader.xRevRange(this.#stream, "+", "-", { COUNT: 1 }))?.[0]?.id ?? "0-0";
        const reply = await this.#reader.xRead(
          { key: this.#stream, id: this.#readId },
          { BLOCK: READ_BLOCK_MS, COUNT: this.#options.maxBatch },
        ) as { messages: StreamEntry[] }[] | null;
        const entries = reply?.[0]?.messages ?? [];
        for (const entry of entries) {
          this.#receive(entry);
          this.#readId = entry.id;
        }
        const addedAt = entries.length === 0 ? NaN : Number.parseInt(this.#readId, 10);
        this.#lagMs = Number.isNaN(addedAt)
          ? 0
          : Math.max(0, Date.now() + this.#clockOffsetMs - addedAt);
        this.#releaseFences();
      } catch (error) {
        if (signal.aborted) return;
        this.#noteError(error as Error);
        await this.#pause(this.#backoffMs);
      }
    }
  }

  #pause(ms: number): Promise<void> {
    const signal = this.#stop.signal;
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done);
    });
  }

  #releaseFences(): void {
    const readId = this.#readId;
    if (readId === null) return;
    for (let index = this.#fences.length - 1; index >= 0; index--) {
      const fence = this.#fences[index]!;
      if (compareIds(readId, fence.id) < 0) continue;
      this.#fences.splice(index, 1);
      fence.resolve();
    }
  }

  #receive(entry: StreamEntry): void {
    const { o: origin, n, b: token, e: json, k: flags = "" } = entry.message;
    const receiver = this.#receiver;
    if (origin === undefined || n === undefined || json === undefined || receiver === null) return;
    if (origin === this.#options.node) {
      if (token === undefined || !this.#uncertain.has(token)) return;
    }
    const events = JSON.parse(json) as HeraldEvent[];
    if (origin !== this.#options.node) {
      const check = this.#origins.accept(origin, Number(n), events.length);
      // A gap across a change of history epoch (Redis restarted): the missed events' history
      // went with the old epoch, so no hole fill can bring them back.
      const epoch = epochOf(events[0]?.seq);
      const before = this.#originEpochs.get(origin);
      if (epoch !== null) this.#originEpochs.set(origin, epoch);
      if (check.state === "gap") {
        log.warn("Bus gap: missed {missed} events from {origin}", { missed: check.missed, origin });
        receiver.gap(origin, check.missed, before !== undefined && epoch !== before);
      } else if (check.state === "reset") {
        log.info("Node {origin} restarted its bus counter (Redis lost its state)", { origin });
      }
    }
    const keyed = new Set<string>();
    for (let index = 0; index < flags.length; index++) {
      if (flags[index] === "1") keyed.add(events[index]!.id);
    }
    receiver.events(events, keyed);
  }
}
