/**
 * The Herald client: one WebSocket to a hub that reconnects by itself, resumes every subscription
 * from its last `seq`, falls back to a snapshot when the hub cannot resume, and reports its
 * connection state. Plain web APIs only (`WebSocket`, `fetch`, timers), so it runs unchanged in
 * browsers, Deno and Node 22+.
 * @module
 */

import { DISCONNECT } from "../events/codes.ts";
import type { JsonObject } from "../events/json.ts";
import { matchesFilter, type SubscriptionFilter } from "../events/messages.ts";
import { parseTopic, topicMatches, type TopicPattern } from "../events/topic.ts";
import { backoffDelay, type BackoffOptions } from "./backoff.ts";
import { BoundedBuffer, type Dropped } from "./buffer.ts";
import type { HubEvent } from "./events.ts";

/**
 * Where a connection is. `closed` is final: only {@linkcode HeraldClient.close} or a close the hub says not to retry lead there.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { connect, type ConnectionState } from "./client.ts";
 * const client = connect("http://127.0.0.1:9");
 * const state: ConnectionState = client.connectionState;
 * assert.equal(state, "connecting");
 * await client.close();
 * ```
 */
export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

/**
 * Why the last connection ended.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type CloseInfo, connect } from "./client.ts";
 * const client = connect("http://127.0.0.1:9");
 * await client.close();
 * const info: CloseInfo | null = client.lastClose;
 * assert.deepEqual(info, { code: 1000, reason: "client closed", reconnect: false, by: "client" });
 * ```
 */
export interface CloseInfo {
  /** The WebSocket close code (1006 when the connection was lost or never opened). */
  readonly code: number;
  /** The reason from the close-code table (`events/codes.ts`), else the one the close carried. */
  readonly reason: string;
  /** Whether the client reconnects after it. */
  readonly reconnect: boolean;
  /** `hub`: the hub closed; `network`: lost or refused; `client`: this client ended it. */
  readonly by: "hub" | "network" | "client";
}

/**
 * Options of {@linkcode connect}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ClientOptions, connect } from "./client.ts";
 * const options: ClientOptions = {
 *   getToken: () => "token-from-my-auth-service",
 *   heartbeatMs: 5000,
 *   backoff: { minMs: 100, maxMs: 5000 },
 *   isAuthClose: (code) => code === 4501,
 * };
 * const client = connect("https://hub.example/", options);
 * assert.equal(client.connectionState, "connecting");
 * await client.close();
 * ```
 */
export interface ClientOptions {
  /**
   * A fixed token (it lets the connection publish). Sent as the WebSocket subprotocol
   * `bearer.<token>`, so it stays out of URLs and proxy access logs; a token with characters a
   * subprotocol cannot carry goes as `?token=` instead.
   */
  readonly token?: string;
  /**
   * Called before every connection attempt, so an expiring token is refreshed on each
   * reconnect. Wins over `token`.
   */
  readonly getToken?: () => string | undefined | Promise<string | undefined>;
  /** Reconnect delay bounds; see {@linkcode backoffDelay}. */
  readonly backoff?: BackoffOptions;
  /**
   * The client sends a `ping` every this many ms; when nothing at all (not even the `pong`)
   * arrives for two intervals it drops the connection and reconnects. Default 15000.
   */
  readonly heartbeatMs?: number;
  /** A handshake not done in this time counts as a failed attempt. Default 10000. */
  readonly connectTimeoutMs?: number;
  /** A `request` not answered in this time fails. Default 15000. */
  readonly requestTimeoutMs?: number;
  /** Items each subscription buffers for a reader that is behind. Default 1000. */
  readonly bufferSize?: number;
  /**
   * Close codes after which a reconnect helps only with a new token. Default: 4001 (the
   * credential expired) and 4500-4999 (the protocol's "not without a change" range). After such a close
   * the client calls `getToken` and tries again (at most 3 times in a row); without `getToken`
   * it stops.
   */
  readonly isAuthClose?: (code: number) => boolean;
  /** The WebSocket constructor (default: the global one). */
  readonly WebSocket?: typeof WebSocket;
}

/**
 * What a subscription's iterator yields, in the order it happened.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { SubscriptionItem } from "./client.ts";
 * const describe = (item: SubscriptionItem): string => {
 *   switch (item.kind) {
 *     case "event":
 *       return item.event.type;
 *     case "snapshot":
 *       return `snapshot (${item.reason ?? "requested"})`;
 *     case "resumed":
 *       return `resumed, ${item.replayed} replayed`;
 *     case "lagged":
 *       return `hub dropped ${item.dropped}`;
 *     case "dropped":
 *       return `buffer dropped ${item.count}`;
 *   }
 * };
 * assert.equal(describe({ kind: "resumed", replayed: 3 }), "resumed, 3 replayed");
 * ```
 */
export type SubscriptionItem =
  | { readonly kind: "event"; readonly event: HubEvent }
  /**
   * The current state (the `state` answer): on request at subscribe (`snapshot: true`), and
   * whenever the hub could not resume (`reason` says why: `epoch`, `expired`, ... or `no_cursor`).
   * Events that follow come after it, without gap or repeat.
   */
  | { readonly kind: "snapshot"; readonly state: JsonObject; readonly reason: string | null }
  /** The connection came back and the hub replayed `replayed` missed events (they follow). */
  | { readonly kind: "resumed"; readonly replayed: number }
  /** The hub dropped `dropped` events for this connection (`drop_oldest`, `conflated`, `bus_gap`). */
  | { readonly kind: "lagged"; readonly dropped: number; readonly reason: string }
  /** This subscription's own buffer was full: `count` events were dropped before the next item. */
  | Dropped;

/**
 * Options of {@linkcode HeraldClient.subscribe}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { connect, type SubscribeOptions } from "./client.ts";
 * const client = connect("http://127.0.0.1:9");
 * const options: SubscribeOptions = { appId: "mail-agent", namespace: "production", snapshot: true };
 * const subscription = client.subscribe("deploy.*", options);
 * assert.deepEqual(subscription.filter, { appId: "mail-agent", namespace: "production" });
 * await client.close();
 * ```
 */
export interface SubscribeOptions {
  readonly appId?: string;
  readonly namespace?: string;
  /** Start with a `snapshot` item (the state, of `appId` when given), then follow from it. */
  readonly snapshot?: boolean;
  /** Start after this cursor instead of now (the first item is then `resumed`, or a `snapshot`). */
  readonly since?: string;
  /** This subscription's buffer size (default: the client's). */
  readonly bufferSize?: number;
}

/**
 * A subscription: an async iterable of {@linkcode SubscriptionItem}s and a way to end it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { connect, type Subscription } from "./client.ts";
 * const client = connect("http://127.0.0.1:9");
 * const first: Subscription = client.subscribe("log.line", { appId: "web" });
 * const second = client.subscribe("log.line", { appId: "web" });
 * first.unsubscribe();
 * first.unsubscribe(); // a no-op
 * assert.equal(second.topic, "log.line"); // still subscribed
 * await client.close();
 * for await (const _ of first) throw new Error("an ended subscription yields nothing");
 * ```
 */
export interface Subscription extends AsyncIterable<SubscriptionItem> {
  readonly topic: string;
  readonly filter: SubscriptionFilter;
  /** Resolves when the subscription is in place (after its snapshot, when it asked for one). */
  readonly ready: Promise<void>;
  /** Ends this subscription (a no-op the second time). The iterator finishes. */
  unsubscribe(): void;
}

/** An error the hub answered (`code` from the error-code table, or an HTTP status). */
export class HeraldError extends Error {
  readonly code: string;
  readonly status: number | undefined;
  readonly index: number | undefined;
  /**
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { HeraldError } from "./client.ts";
   * const error = new HeraldError("bad_event", "type is required", 400, 0);
   * assert.equal(error.code, "bad_event");
   * assert.equal(error.status, 400);
   * ```
   */
  constructor(code: string, message: string, status?: number, index?: number) {
    super(message);
    this.name = "HeraldError";
    this.code = code;
    this.status = status;
    this.index = index;
  }
}

/**
 * An event to publish: the `POST /events` fields.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { PublishInput } from "./client.ts";
 * const event: PublishInput = {
 *   type: "deploy.step",
 *   appId: "mail-agent",
 *   payload: { step: "build", status: "running" },
 * };
 * assert.equal(event.type, "deploy.step");
 * ```
 */
export interface PublishInput {
  readonly type: string;
  readonly appId?: string;
  readonly namespace?: string;
  readonly payload?: JsonObject;
  readonly id?: string;
  readonly timestamp?: string;
}

/**
 * What the hub accepted for one published event.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Accepted } from "./client.ts";
 * const accepted: Accepted = { id: "d-1", seq: "mx76jzcy125rgp1-42" };
 * assert.ok(accepted.seq.length > 0);
 * ```
 */
export interface Accepted {
  readonly id: string;
  readonly seq: string;
}

/** A token made only of the characters a WebSocket subprotocol may hold (RFC 6455, RFC 7230 tchar). */
const SUBPROTOCOL_SAFE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * The topic the client connects with: it subscribes to nothing anyone publishes, so a client is
 * never subscribed to `*` (the hub's default for a connection without topic) before its own
 * subscriptions are in place.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { IDLE_TOPIC } from "./client.ts";
 * import { parseTopic } from "../events/topic.ts";
 * assert.deepEqual(parseTopic(IDLE_TOPIC), { kind: "exact", topic: "herald.idle", type: "herald.idle" });
 * ```
 */
export const IDLE_TOPIC = "herald.idle";

/** Publish errors worth another try with the same event id. */
const RETRIED = new Set(["rate_limited", "unavailable", "disconnected", "timeout"]);

/** When the state request of a subscription without `appId` only needs the cursor. */
const CURSOR_ONLY_APP = "herald.cursor";

/** Ids remembered per subscription to drop an event a second replay would bring again. */
const SEEN_IDS = 4096;

interface Pending {
  resolve(payload: JsonObject): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/** One hub subscription (topic + filter), shared by every handle that asked for it. */
interface WireSub {
  readonly key: string;
  readonly pattern: TopicPattern;
  readonly filter: SubscriptionFilter;
  cursor: string | undefined;
  /** `pending`: subscribe sent, reply not yet in; events are not this subscription's yet. */
  phase: "idle" | "pending" | "live";
  readonly handles: Set<Handle>;
  readonly seen: Set<string>;
  /** The hub confirmed it at least once. */
  everSubscribed: boolean;
  /** Its first subscribe resumes from a snapshot just delivered (no `resumed` item for it). */
  snapshotFirst: boolean;
}

class Handle implements Subscription {
  readonly buffer: BoundedBuffer<SubscriptionItem>;
  /** A snapshot is owed to this handle (its events wait until it is delivered). */
  needsSnapshot: boolean;
  /** The hub subscription it shares. */
  readonly wire: WireSub;
  readonly ready: Promise<void>;
  resolveReady!: () => void;
  rejectReady!: (error: Error) => void;
  #done = false;
  readonly #release: (handle: Handle) => void;

  constructor(wire: WireSub, size: number, snapshot: boolean, release: (handle: Handle) => void) {
    this.wire = wire;
    this.buffer = new BoundedBuffer<SubscriptionItem>(size, (item) => item.kind === "event");
    this.needsSnapshot = snapshot;
    this.#release = release;
    this.ready = new Promise<void>((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.ready.catch(() => {});
  }

  get topic(): string {
    return this.wire.pattern.topic;
  }

  get filter(): SubscriptionFilter {
    return this.wire.filter;
  }

  get done(): boolean {
    return this.#done;
  }

  unsubscribe(): void {
    if (this.#done) return;
    this.#done = true;
    this.buffer.end();
    this.#release(this);
  }

  fail(error: Error): void {
    if (this.#done) return;
    this.#done = true;
    this.rejectReady(error);
    this.buffer.end(error);
    this.#release(this);
  }

  [Symbol.asyncIterator](): AsyncIterator<SubscriptionItem> {
    return this.buffer[Symbol.asyncIterator]();
  }
}

/** `ws://host/ws` and `http://host` from either form of a hub URL. */
function hubUrls(url: string): { ws: URL; http: URL } {
  const parsed = new URL(url);
  const secure = parsed.protocol === "https:" || parsed.protocol === "wss:";
  const base = parsed.pathname.replace(/\/ws\/?$/, "").replace(/\/$/, "");
  const ws = new URL(`${secure ? "wss" : "ws"}://${parsed.host}${base}/ws`);
  const http = new URL(`${secure ? "https" : "http"}://${parsed.host}${base}/`);
  return { ws, http };
}

function closeInfo(
  code: number,
  reason: string,
  by: CloseInfo["by"],
): Omit<CloseInfo, "reconnect"> {
  // 4001 has several reasons (expired, revoked): the one the hub sent, else the code's first.
  const entries = Object.values(DISCONNECT);
  const known = entries.find((entry) => entry.code === code && entry.reason === reason) ??
    entries.find((entry) => entry.code === code);
  return { code, reason: known?.reason ?? (reason || "connection lost"), by };
}

function defaultIsAuthClose(code: number): boolean {
  return code === DISCONNECT.tokenExpired.code || (code >= 4500 && code <= 4999);
}

/**
 * A connection to a hub. Create it with {@linkcode connect}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { connect } from "./client.ts";
 * // Nothing listens on port 9: the client keeps trying until it is closed.
 * const client = connect("http://127.0.0.1:9", { backoff: { minMs: 10, maxMs: 20 } });
 * const seen: string[] = [];
 * client.onState((state) => seen.push(state));
 * await new Promise<void>((resolve) =>
 *   client.onState((state) => state === "reconnecting" && resolve())
 * );
 * assert.equal(client.lastClose?.by, "network");
 * await client.close();
 * assert.equal(client.connectionState, "closed");
 * assert.deepEqual(seen.slice(-1), ["closed"]);
 * ```
 */
export class HeraldClient {
  readonly #urls: { ws: URL; http: URL };
  readonly #options: ClientOptions;
  readonly #heartbeatMs: number;
  readonly #WebSocket: typeof WebSocket;
  #socket: WebSocket | null = null;
  #state: ConnectionState = "connecting";
  #lastClose: CloseInfo | null = null;
  readonly #listeners = new Set<(state: ConnectionState, lastClose: CloseInfo | null) => void>();
  #attempt = 0;
  #authFailures = 0;
  #opens = 0;
  readonly #wires = new Map<string, WireSub>();
  readonly #pending = new Map<string, Pending>();
  #nextRequest = 1;
  #retryTimer: ReturnType<typeof setTimeout> | null = null;
  #heartbeatTimer: ReturnType<typeof setInterval> | null = null;
  #connectTimer: ReturnType<typeof setTimeout> | null = null;
  #lastReceived = 0;
  #lastTick = 0;
  #duplicates = 0;
  #closed: Promise<void> = Promise.resolve();
  readonly #wake = () => this.reconnectNow();
  readonly #visible = () => {
    const document = (globalThis as { document?: { visibilityState?: string } }).document;
    if (document?.visibilityState === "visible") this.reconnectNow();
  };

  /** Use {@linkcode connect}. */
  constructor(url: string, options: ClientOptions = {}) {
    this.#urls = hubUrls(url);
    this.#options = options;
    this.#heartbeatMs = options.heartbeatMs ?? 15_000;
    const ctor = options.WebSocket ?? globalThis.WebSocket;
    if (ctor === undefined) throw new Error("no WebSocket: pass options.WebSocket");
    this.#WebSocket = ctor;
    const target = globalThis as {
      addEventListener?: (type: string, listener: () => void) => void;
    };
    target.addEventListener?.("online", this.#wake);
    target.addEventListener?.("visibilitychange", this.#visible);
    void this.#open();
  }

  /** The connection's state now. */
  get connectionState(): ConnectionState {
    return this.#state;
  }

  /** Why the last connection ended; null before the first close. */
  get lastClose(): CloseInfo | null {
    return this.#lastClose;
  }

  /** How many times a connection opened (1 after the first open; more after reconnects). */
  get opens(): number {
    return this.#opens;
  }

  /** Events dropped because a replay brought them to a subscription a second time. */
  get duplicatesDropped(): number {
    return this.#duplicates;
  }

  /**
   * Calls `listener` on every state change (with the last close). Returns a function that
   * removes it.
   */
  onState(
    listener: (state: ConnectionState, lastClose: CloseInfo | null) => void,
  ): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Resolves once the state is `open` (at once if it is); rejects if the client closes. */
  whenOpen(): Promise<void> {
    if (this.#state === "open") return Promise.resolve();
    if (this.#state === "closed") return Promise.reject(new HeraldError("closed", "client closed"));
    return new Promise((resolve, reject) => {
      const off = this.onState((state) => {
        if (state === "open") {
          off();
          resolve();
        } else if (state === "closed") {
          off();
          reject(new HeraldError("closed", "client closed"));
        }
      });
    });
  }

  /**
   * Subscribes to `topic` (`*`, `deploy.*`, `deploy.step`) with optional `appId`/`namespace`
   * filters. Asking again for the same topic and filters shares the one hub subscription; each
   * handle has its own buffer and its own `unsubscribe`.
   */
  subscribe(topic: string, options: SubscribeOptions = {}): Subscription {
    const pattern = parseTopic(topic);
    if (pattern === null) throw new HeraldError("bad_message", `"${topic}" is not a topic pattern`);
    const filter: SubscriptionFilter = {
      ...(options.appId !== undefined && { appId: options.appId }),
      ...(options.namespace !== undefined && { namespace: options.namespace }),
    };
    const key = JSON.stringify([topic, filter.appId ?? null, filter.namespace ?? null]);
    let wire = this.#wires.get(key);
    const fresh = wire === undefined;
    if (wire === undefined) {
      wire = {
        key,
        pattern,
        filter,
        cursor: options.since,
        phase: "idle",
        handles: new Set(),
        seen: new Set(),
        everSubscribed: false,
        snapshotFirst: false,
      };
      this.#wires.set(key, wire);
    }
    const handle = new Handle(
      wire,
      options.bufferSize ?? this.#options.bufferSize ?? 1000,
      options.snapshot === true,
      (h) => this.#release(h),
    );
    wire.handles.add(handle);
    if (this.#state === "closed") {
      handle.fail(new HeraldError("closed", "client closed"));
    } else if (fresh) {
      if (this.#state === "open") this.#subscribeWire(wire);
    } else if (wire.phase === "live") {
      if (handle.needsSnapshot) this.#snapshot(wire, [handle], { reason: null });
      else handle.resolveReady();
    }
    return handle;
  }

  /**
   * Sends a `request` (`state`, `apps`, `personas`, `cluster`, `history`) and resolves with the
   * answer's payload; waits for the connection when it is not open.
   */
  request(topic: string, payload: JsonObject = {}): Promise<JsonObject> {
    return this.#whenOpenThen(() => this.#send({ type: "request", topic, payload }));
  }

  async #whenOpenThen<T>(then: () => Promise<T>): Promise<T> {
    const deadline = this.#options.requestTimeoutMs ?? 15_000;
    await withTimeout(this.whenOpen(), deadline, "no connection to the hub");
    return await then();
  }

  /** The hub's state (`request state`), of one app when `appId` is given. */
  state(params: { appId?: string } = {}): Promise<JsonObject> {
    return this.request("state", params as JsonObject);
  }

  /** Every app's state (`request apps`). */
  apps(): Promise<JsonObject> {
    return this.request("apps");
  }

  /** Retained events (`request history`): `{recovered, events, truncated}`. */
  history(
    params: { since?: string; limit?: number; topic?: string; filter?: SubscriptionFilter } = {},
  ): Promise<JsonObject> {
    return this.request("history", params as JsonObject);
  }

  /**
   * Publishes one event or several, in order, over the WebSocket (the connection carries the
   * token; the hub's `POST /events` has no CORS, so this is what works in a browser too). Each
   * event without an `id` gets one, so that a retry after a lost answer is not delivered twice:
   * `rate_limited`, `unavailable` and a lost connection are retried with backoff (5 times).
   */
  async publish(events: PublishInput | readonly PublishInput[]): Promise<Accepted[]> {
    const batch = (Array.isArray(events) ? events : [events]) as readonly PublishInput[];
    const accepted: Accepted[] = [];
    for (const input of batch) {
      const event = { id: crypto.randomUUID(), ...input };
      for (let attempt = 0;; attempt++) {
        try {
          const answer = await this.#whenOpenThen(() => this.#send({ type: "publish", event }));
          accepted.push({ id: String(answer.id), seq: String(answer.seq) });
          break;
        } catch (error) {
          const code = error instanceof HeraldError ? error.code : "";
          if (attempt >= 5 || !RETRIED.has(code)) throw error;
          await delay(backoffDelay(attempt, this.#options.backoff));
        }
      }
    }
    return accepted;
  }

  /** Drops the connection and reconnects now, skipping any backoff wait (a page woke up). */
  reconnectNow(): void {
    if (this.#state === "closed") return;
    if (this.#state === "reconnecting" && this.#retryTimer !== null) {
      clearTimeout(this.#retryTimer);
      this.#retryTimer = null;
      this.#attempt = 0;
      void this.#open();
    } else if (this.#state === "open") {
      this.#lastReceived = Date.now();
      this.#sendRaw({ type: "ping" });
    }
  }

  /** Closes for good: ends every subscription and rejects pending requests. */
  async close(): Promise<void> {
    if (this.#state !== "closed") {
      this.#stopTimers();
      const socket = this.#socket;
      this.#socket = null;
      if (socket !== null) {
        this.#closed = new Promise((resolve) => {
          socket.addEventListener("close", () => resolve(), { once: true });
          setTimeout(resolve, 1000);
        });
        detach(socket);
        try {
          socket.close(1000, "client closed");
        } catch {
          // Not open yet.
        }
      }
      this.#failPending(new HeraldError("closed", "client closed"));
      for (const wire of this.#wires.values()) {
        for (const handle of wire.handles) handle.unsubscribe();
      }
      this.#wires.clear();
      const target = globalThis as {
        removeEventListener?: (type: string, listener: () => void) => void;
      };
      target.removeEventListener?.("online", this.#wake);
      target.removeEventListener?.("visibilitychange", this.#visible);
      this.#lastClose ??= { code: 1000, reason: "client closed", reconnect: false, by: "client" };
      this.#setState("closed");
    }
    await this.#closed;
  }

  async #token(): Promise<string | undefined> {
    if (this.#options.getToken !== undefined) return await this.#options.getToken();
    return this.#options.token;
  }

  #setState(state: ConnectionState): void {
    if (this.#state === state) return;
    this.#state = state;
    for (const listener of [...this.#listeners]) {
      try {
        listener(state, this.#lastClose);
      } catch {
        // A listener's fault is its own.
      }
    }
  }

  async #open(): Promise<void> {
    let token: string | undefined;
    try {
      token = await this.#token();
    } catch (error) {
      this.#lost({
        code: 1006,
        reason: `getToken failed: ${error instanceof Error ? error.message : error}`,
        by: "client",
      });
      return;
    }
    if (this.#state === "closed") return;
    const url = new URL(this.#urls.ws);
    url.searchParams.set("topic", IDLE_TOPIC);
    const protocols: string[] = [];
    if (token !== undefined && SUBPROTOCOL_SAFE.test(token)) protocols.push(`bearer.${token}`);
    else if (token !== undefined) url.searchParams.set("token", token);
    let socket: WebSocket;
    try {
      socket = new this.#WebSocket(url.href, protocols);
    } catch (error) {
      this.#lost({ code: 1006, reason: String(error), by: "network" });
      return;
    }
    this.#socket = socket;
    this.#connectTimer = setTimeout(() => {
      this.#connectTimer = null;
      this.#drop(socket, { code: 1006, reason: "connect timed out", by: "network" });
    }, this.#options.connectTimeoutMs ?? 10_000);
    let opened = false;
    socket.onopen = () => {
      opened = true;
      this.#onOpen(socket);
    };
    socket.onmessage = (event) => this.#onMessage(event.data);
    socket.onerror = () => {};
    socket.onclose = (event) => {
      this.#drop(
        socket,
        closeInfo(event.code, event.reason, opened && event.code !== 1006 ? "hub" : "network"),
      );
    };
  }

  #onOpen(socket: WebSocket): void {
    if (this.#connectTimer !== null) clearTimeout(this.#connectTimer);
    this.#connectTimer = null;
    this.#attempt = 0;
    this.#opens++;
    this.#lastReceived = Date.now();
    this.#lastTick = Date.now();
    this.#heartbeatTimer = setInterval(() => this.#heartbeat(socket), this.#heartbeatMs);
    this.#setState("open");
    for (const wire of this.#wires.values()) this.#subscribeWire(wire);
  }

  /** Every interval: detect a wake from sleep, a silent hub, else send a ping. */
  #heartbeat(socket: WebSocket): void {
    const now = Date.now();
    const slept = now - this.#lastTick > this.#heartbeatMs * 3;
    this.#lastTick = now;
    if (slept) {
      this.#drop(socket, { code: 1006, reason: "woke from sleep", by: "client" }, true);
    } else if (now - this.#lastReceived >= this.#heartbeatMs * 2) {
      this.#drop(socket, {
        code: 1006,
        reason: `nothing from the hub for ${now - this.#lastReceived} ms`,
        by: "client",
      });
    } else {
      this.#sendRaw({ type: "ping" });
    }
  }

  #onMessage(data: unknown): void {
    this.#lastReceived = Date.now();
    if (typeof data !== "string") return;
    // deno-lint-ignore no-explicit-any
    let frame: any;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (typeof frame !== "object" || frame === null) return;
    if (typeof frame.seq === "string" && typeof frame.id === "string") {
      this.#dispatch(frame as HubEvent);
      return;
    }
    if (frame.type === "lagged") {
      const item: SubscriptionItem = {
        kind: "lagged",
        dropped: Number(frame.payload?.dropped ?? 0),
        reason: String(frame.payload?.reason ?? "unknown"),
      };
      for (const wire of this.#wires.values()) {
        if (wire.phase !== "live") continue;
        for (const handle of wire.handles) handle.buffer.push(item);
      }
      return;
    }
    const requestId = frame.requestId;
    if (typeof requestId !== "string") return;
    const pending = this.#pending.get(requestId);
    if (pending === undefined) return;
    this.#pending.delete(requestId);
    clearTimeout(pending.timer);
    if (frame.type === "error") {
      pending.reject(
        new HeraldError(String(frame.payload?.code), String(frame.payload?.message ?? "")),
      );
    } else {
      pending.resolve((frame.payload ?? {}) as JsonObject);
    }
  }

  #dispatch(event: HubEvent): void {
    for (const wire of this.#wires.values()) {
      if (wire.phase !== "live") continue;
      if (!topicMatches(wire.pattern, event.type) || !matchesFilter(wire.filter, event)) continue;
      if (wire.seen.has(event.id)) {
        this.#duplicates++;
        continue;
      }
      wire.seen.add(event.id);
      if (wire.seen.size > SEEN_IDS) wire.seen.delete(wire.seen.values().next().value!);
      wire.cursor = event.seq;
      for (const handle of wire.handles) {
        if (!handle.needsSnapshot) handle.buffer.push({ kind: "event", event });
      }
    }
  }

  #sendRaw(message: unknown): boolean {
    const socket = this.#socket;
    if (socket === null || socket.readyState !== 1) return false;
    try {
      socket.send(JSON.stringify(message));
      return true;
    } catch {
      return false;
    }
  }

  /** Sends a message with a fresh requestId and resolves with its reply's payload. */
  #send(message: Record<string, unknown>): Promise<JsonObject> {
    const requestId = `c${this.#nextRequest++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(requestId);
        reject(new HeraldError("timeout", `no answer to ${message.type} ${requestId}`));
      }, this.#options.requestTimeoutMs ?? 15_000);
      this.#pending.set(requestId, { resolve, reject, timer });
      if (!this.#sendRaw({ ...message, requestId })) {
        this.#pending.delete(requestId);
        clearTimeout(timer);
        reject(new HeraldError("disconnected", "the connection is not open"));
      }
    });
  }

  /**
   * Puts `wire` in place on the open connection. With a cursor: `subscribe` with `since`; on
   * `recovered: false` a snapshot follows. Without one: if a handle wants a snapshot (or the
   * cursor was never placed), the state first, then `subscribe` with `since` = its `seq`
   * (snapshot-then-follow, so nothing after the snapshot is missed); else `subscribe` from now,
   * and the state's `seq` (of no app) as the cursor to resume from.
   */
  #subscribeWire(wire: WireSub): void {
    const resuming = wire.cursor !== undefined;
    const handles = [...wire.handles];
    if (!resuming && (wire.everSubscribed || handles.some((handle) => handle.needsSnapshot))) {
      // Handles that already had events lost track during the outage: all get a snapshot.
      const reason = wire.everSubscribed ? "no_cursor" : null;
      this.#snapshot(wire, reason === null ? handles.filter((h) => h.needsSnapshot) : handles, {
        reason,
        then: () => this.#subscribeWire(wire),
      });
      return;
    }
    wire.phase = "pending";
    this.#send({
      type: "subscribe",
      topic: wire.pattern.topic,
      filter: wire.filter,
      ...(resuming && { since: wire.cursor }),
    }).then((payload) => {
      if (this.#wires.get(wire.key) !== wire) return;
      wire.phase = "live";
      const quiet = wire.snapshotFirst;
      wire.snapshotFirst = false;
      wire.everSubscribed = true;
      if (resuming && payload.recovered !== true) {
        const reason = String(payload.reason ?? "not_recovered");
        this.#snapshot(wire, [...wire.handles], { reason });
        return;
      }
      if (resuming && !quiet) {
        const item: SubscriptionItem = { kind: "resumed", replayed: Number(payload.replayed) };
        for (const handle of wire.handles) {
          if (!handle.needsSnapshot) handle.buffer.push(item);
        }
      }
      const late = [...wire.handles].filter((handle) => handle.needsSnapshot);
      // From now on: ready once the cursor to resume from is placed.
      if (late.length > 0 || !resuming) this.#snapshot(wire, late, { reason: null });
      else for (const handle of wire.handles) handle.resolveReady();
    }, (error: HeraldError) => this.#wireFailed(wire, error));
  }

  #wireFailed(wire: WireSub, error: HeraldError): void {
    if (this.#wires.get(wire.key) !== wire) return;
    if (error.code === "disconnected" || error.code === "closed") return;
    if (error.code === "timeout") {
      // The reply went missing: start this connection over, everything resumes.
      if (this.#socket !== null) {
        this.#drop(this.#socket, { code: 1006, reason: "no answer from the hub", by: "client" });
      }
      return;
    }
    this.#wires.delete(wire.key);
    for (const handle of wire.handles) handle.fail(error);
  }

  /**
   * Asks for the state, places `wire`'s cursor at its `seq` and hands it as a snapshot to
   * `handles`. Replies come in line with events, so events that arrive before the answer are
   * before its `seq`: a handle waiting for its snapshot skips them. With `then` (state before
   * subscribe), the subscription is placed after the answer, from its `seq`.
   */
  #snapshot(
    wire: WireSub,
    handles: Handle[],
    options: { reason: string | null; then?: () => void },
  ): void {
    for (const handle of handles) handle.needsSnapshot = true;
    if (options.then !== undefined) {
      wire.phase = "pending";
      wire.snapshotFirst = true;
    }
    const appId = wire.filter.appId ?? (handles.length === 0 ? CURSOR_ONLY_APP : undefined);
    this.#send({
      type: "request",
      topic: "state",
      payload: appId === undefined ? {} : { appId },
    }).then((state) => {
      if (this.#wires.get(wire.key) !== wire) return;
      if (typeof state.seq === "string") wire.cursor = state.seq;
      for (const handle of handles) {
        if (!handle.needsSnapshot || handle.done) continue;
        handle.needsSnapshot = false;
        handle.buffer.push({ kind: "snapshot", state, reason: options.reason });
      }
      if (options.then !== undefined) {
        options.then();
      } else {
        for (const handle of wire.handles) if (!handle.needsSnapshot) handle.resolveReady();
      }
    }, (error: HeraldError) => this.#wireFailed(wire, error));
  }

  #release(handle: Handle): void {
    const wire = handle.wire;
    wire.handles.delete(handle);
    if (wire.handles.size > 0 || this.#wires.get(wire.key) !== wire) return;
    this.#wires.delete(wire.key);
    if (this.#state !== "open" || wire.phase === "idle") return;
    // The hub drops every subscription to the topic, whatever its filter: put the others back.
    const siblings = [...this.#wires.values()].filter((other) =>
      other.pattern.topic === wire.pattern.topic
    );
    for (const sibling of siblings) sibling.phase = "pending";
    this.#send({ type: "unsubscribe", topic: wire.pattern.topic }).then(() => {
      for (const sibling of siblings) {
        if (this.#wires.get(sibling.key) === sibling) this.#subscribeWire(sibling);
      }
    }, () => {});
  }

  #failPending(error: Error): void {
    for (const [requestId, pending] of this.#pending) {
      clearTimeout(pending.timer);
      this.#pending.delete(requestId);
      pending.reject(error);
    }
  }

  #stopTimers(): void {
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    if (this.#heartbeatTimer !== null) clearInterval(this.#heartbeatTimer);
    if (this.#connectTimer !== null) clearTimeout(this.#connectTimer);
    this.#retryTimer = this.#heartbeatTimer = this.#connectTimer = null;
  }

  /** Abandons `socket` (if it is still the current one) and goes on as after a close. */
  #drop(socket: WebSocket, info: Omit<CloseInfo, "reconnect">, immediately = false): void {
    if (this.#socket !== socket) return;
    this.#socket = null;
    detach(socket);
    try {
      socket.close();
    } catch {
      // Already closing.
    }
    this.#lost(info, immediately);
  }

  #lost(info: Omit<CloseInfo, "reconnect">, immediately = false): void {
    if (this.#state === "closed") return;
    this.#stopTimers();
    this.#failPending(new HeraldError("disconnected", info.reason));
    for (const wire of this.#wires.values()) wire.phase = "idle";
    const auth = info.by === "hub" && (this.#options.isAuthClose ?? defaultIsAuthClose)(info.code);
    const permanent = (info.by === "hub" && info.code === DISCONNECT.binaryFrame.code) ||
      (auth && (this.#options.getToken === undefined || this.#authFailures >= 3));
    if (auth) this.#authFailures++;
    else if (info.by === "hub") this.#authFailures = 0;
    this.#lastClose = { ...info, reconnect: !permanent };
    if (permanent) {
      void this.close();
      return;
    }
    this.#setState("reconnecting");
    const wait = immediately ? 0 : backoffDelay(this.#attempt++, this.#options.backoff);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      void this.#open();
    }, wait);
  }
}

function detach(socket: WebSocket): void {
  socket.onopen =
    socket.onmessage =
    socket.onerror =
    socket.onclose =
      null;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new HeraldError("timeout", message)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Connects to the hub at `url` (`http://host:8800`, or `ws://host:8800/ws`) and keeps the
 * connection up until {@linkcode HeraldClient.close}. Returns at once; the state starts at
 * `connecting`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { connect } from "./client.ts";
 * let calls = 0;
 * const client = connect("http://127.0.0.1:9", {
 *   getToken: () => `token-${++calls}`,
 *   backoff: { minMs: 5, maxMs: 10 },
 * });
 * assert.equal(client.connectionState, "connecting");
 * // getToken is asked again before every attempt.
 * await new Promise<void>((resolve) => {
 *   const timer = setInterval(() => calls >= 2 && (clearInterval(timer), resolve()), 5);
 * });
 * await client.close();
 * assert.ok(calls >= 2);
 * ```
 */
export function connect(url: string, options: ClientOptions = {}): HeraldClient {
  return new HeraldClient(url, options);
}
