/**
 * The Deno KV history: durable across restarts (a local SQLite file through `HERALD_KV_PATH`,
 * or the managed store `Deno.openKv()` opens on Deno Deploy).
 *
 * Keys: `["herald","epoch"]` (kept, so cursors stay valid across restarts),
 * `["herald","head",tenant]` (newest cursor number), `["herald","ev",tenant,n]` (one event:
 * 8 bytes of store time, then its UTF-8 wire frame) and `["herald","tenants",tenant]`.
 *
 * A batch is stored in one atomic operation that checks the head it read, so isolates sharing
 * the store never hand out one cursor twice (on a conflict the batch is retried with the new
 * head). Limits of Deno KV apply and are checked before anything is written: an event whose
 * frame is larger than {@linkcode KV_MAX_FRAME_BYTES} is rejected, and so is a batch that does
 * not fit one atomic operation (1000 mutations, 800 KiB). Age retention uses KV's `expireIn`
 * and is also checked on read; count retention deletes what fell out after each append.
 * @module
 */

import type { HeraldEvent } from "../../events/envelope.ts";
import type { Clock } from "../clock.ts";
import {
  encodeFrameAt,
  type EventDraft,
  EventTooLargeError,
  formatCursor,
  type History,
  type HistoryPage,
  type HistoryQuery,
  HistoryUnavailableError,
  newEpoch,
  type StoredEvent,
} from "./history.ts";
import { collectPage, windowFor } from "./_durable.ts";
import type { RetentionLimits } from "./memory.ts";

/** Deno KV's largest value (64 KiB) less the room the store time and encoding take. */
export const KV_MAX_FRAME_BYTES = 65_536 - 64;
/** Mutations one atomic operation may hold, less the head and tenant keys. */
const KV_MAX_BATCH = 1000 - 2;
/** Bytes of keys and values one atomic operation may hold, with a margin for the encoding. */
const KV_MAX_BATCH_BYTES = 819_200 - 16_384;
/** Attempts to store a batch when other isolates keep moving the head. */
const KV_MAX_ATTEMPTS = 50;

const ROOT = "herald";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Deno KV-backed {@linkcode History}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KvHistory } from "./kv.ts";
 * import { ManualClock } from "../clock.ts";
 * const history = new KvHistory({ maxEvents: 100, ttlMs: 60_000 }, new ManualClock(), ":memory:");
 * await history.start();
 * const draft = (n: number) => ({
 *   tenant: "t",
 *   type: "deploy.step",
 *   payload: { n },
 *   id: `i${n}`,
 *   timestamp: "2026-01-01T00:00:00Z",
 * });
 * const [stored] = await history.append("t", [draft(1)]);
 * const page = await history.read("t", { since: null, limit: 10 });
 * assert.ok(page.state === "ok" && page.events[0]!.event.seq === stored!.event.seq);
 * await history.close();
 * ```
 */
export class KvHistory implements History {
  readonly kind = "kv";
  readonly shared = true;
  readonly #limits: RetentionLimits;
  readonly #clock: Clock;
  readonly #path: string | undefined;
  #kv: Deno.Kv | null = null;
  #epoch = "";
  /** Settles when the previous append finished: appends resolve in call order. */
  #tail: Promise<unknown> = Promise.resolve();

  constructor(limits: RetentionLimits, clock: Clock, path?: string) {
    this.#limits = limits;
    this.#clock = clock;
    this.#path = path;
  }

  get epoch(): string {
    return this.#epoch;
  }

  async start(): Promise<void> {
    const kv = await Deno.openKv(this.#path);
    this.#kv = kv;
    for (;;) {
      const current = await kv.get<string>([ROOT, "epoch"]);
      if (current.value !== null) {
        this.#epoch = current.value;
        return;
      }
      const epoch = newEpoch();
      const result = await kv.atomic().check(current).set([ROOT, "epoch"], epoch).commit();
      if (result.ok) {
        this.#epoch = epoch;
        return;
      }
    }
  }

  append(tenant: string, drafts: readonly EventDraft[]): Promise<StoredEvent[]> {
    const result = this.#tail.then(() => this.#append(tenant, drafts));
    this.#tail = result.catch(() => {});
    return result;
  }

  async #append(tenant: string, drafts: readonly EventDraft[]): Promise<StoredEvent[]> {
    const kv = this.#open();
    if (drafts.length > KV_MAX_BATCH) {
      throw new EventTooLargeError(
        `the KV history stores at most ${KV_MAX_BATCH} events per batch; split the batch`,
        null,
      );
    }
    const headKey = [ROOT, "head", tenant];
    for (let attempt = 0; attempt < KV_MAX_ATTEMPTS; attempt++) {
      if (attempt > 0) await this.#clock.sleep(Math.min(attempt, 20));
      let head: Deno.KvEntryMaybe<number>;
      try {
        head = await kv.get<number>(headKey);
      } catch (error) {
        if (isBusy(error)) continue;
        throw new HistoryUnavailableError(`The KV history could not be read: ${error}`);
      }
      const last = head.value ?? 0;
      const now = this.#clock.now();
      const stored: StoredEvent[] = [];
      const atomic = kv.atomic().check(head);
      let bytes = 0;
      for (const [index, draft] of drafts.entries()) {
        const event: HeraldEvent = { ...draft, seq: formatCursor(this.#epoch, last + index + 1) };
        const frame = encodeFrameAt(event, index);
        const value = encodeEntry(now, frame);
        if (value.byteLength - 8 > KV_MAX_FRAME_BYTES) {
          throw new EventTooLargeError(
            `the event is ${
              value.byteLength - 8
            } bytes as stored; the KV history holds at most ${KV_MAX_FRAME_BYTES}`,
            index,
          );
        }
        bytes += value.byteLength + encoder.encode(tenant).byteLength + 32;
        atomic.set([ROOT, "ev", tenant, last + index + 1], value, {
          expireIn: this.#limits.ttlMs,
        });
        stored.push({ event, frame });
      }
      if (bytes > KV_MAX_BATCH_BYTES) {
        throw new EventTooLargeError(
          `the batch is ${bytes} bytes as stored; one KV history write holds at most ${KV_MAX_BATCH_BYTES}: split the batch`,
          null,
        );
      }
      atomic.set(headKey, last + drafts.length).set([ROOT, "tenants", tenant], true);
      let committed: Deno.KvCommitResult | Deno.KvCommitError;
      try {
        committed = await atomic.commit();
      } catch (error) {
        if (isBusy(error)) continue;
        throw new HistoryUnavailableError(`The KV history refused the write: ${error}`);
      }
      if (!committed.ok) continue;
      // Retention only: what a failed trim leaves is skipped on read and removed next time.
      await this.#trim(kv, tenant, last, last + drafts.length).catch(() => {});
      return stored;
    }
    throw new HistoryUnavailableError(
      `Could not store events after ${KV_MAX_ATTEMPTS} attempts: the KV store stayed busy`,
    );
  }

  /** Deletes the events that fell out of the count bound when the head moved to `last`. */
  async #trim(kv: Deno.Kv, tenant: string, previous: number, last: number): Promise<void> {
    const from = Math.max(1, previous - this.#limits.maxEvents + 1);
    const to = last - this.#limits.maxEvents;
    for (let start = from; start <= to; start += KV_MAX_BATCH) {
      const atomic = kv.atomic();
      for (let n = start; n <= Math.min(to, start + KV_MAX_BATCH - 1); n++) {
        atomic.delete([ROOT, "ev", tenant, n]);
      }
      await atomic.commit();
    }
  }

  async read(tenant: string, query: HistoryQuery): Promise<HistoryPage> {
    const kv = this.#open();
    const last = (await kv.get<number>([ROOT, "head", tenant])).value ?? 0;
    const place = windowFor(query.since, this.#epoch, last, this.#limits, this.#clock.now());
    if ("lost" in place) return { state: "lost", reason: place.lost };
    const { after, window } = place;
    const prefix = [ROOT, "ev", tenant];
    const listed = kv.list<Uint8Array>({ prefix, start: [...prefix, after + 1] });
    const entries = (async function* () {
      for await (const entry of listed) {
        yield { n: entry.key[3] as number, ...decodeEntry(entry.value) };
      }
    })();
    return await collectPage(entries, tenant, query, after, window);
  }

  async tenants(): Promise<string[]> {
    const tenants: string[] = [];
    for await (const entry of this.#open().list({ prefix: [ROOT, "tenants"] })) {
      tenants.push(entry.key[2] as string);
    }
    return tenants;
  }

  close(): Promise<void> {
    this.#kv?.close();
    this.#kv = null;
    return Promise.resolve();
  }

  #open(): Deno.Kv {
    if (this.#kv === null) throw new HistoryUnavailableError("The KV history is not open");
    return this.#kv;
  }
}

/** SQLite answers "database is locked" while another isolate writes the same file. */
function isBusy(error: unknown): boolean {
  return error instanceof Error && /locked|busy/i.test(error.message);
}

function encodeEntry(storedAt: number, frame: string): Uint8Array {
  const body = encoder.encode(frame);
  const value = new Uint8Array(8 + body.byteLength);
  new DataView(value.buffer).setFloat64(0, storedAt);
  value.set(body, 8);
  return value;
}

function decodeEntry(value: Uint8Array): { storedAt: number; frame: string } {
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  return { storedAt: view.getFloat64(0), frame: decoder.decode(value.subarray(8)) };
}
