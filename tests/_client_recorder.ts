/**
 * Runs the client and records what it does as plain JSON, so the same scenarios can drive it in
 * Deno (directly) and in Chromium (bundled into a page, through `page.evaluate`). Imports only
 * the client: it is bundled for the browser as it is.
 * @module
 */

import { connect, type HeraldClient, type Subscription } from "../client/mod.ts";

/** A subscription item as recorded (events reduced to what the scenarios compare). */
export type RecordedItem =
  | { kind: "event"; seq: string; id: string; type: string; appId?: string }
  | { kind: "snapshot"; reason: string | null; seq: string; apps: string[] }
  | { kind: "resumed"; replayed: number }
  | { kind: "lagged"; dropped: number; reason: string }
  | { kind: "dropped"; count: number };

/** Why a connection ended, as the client reports it. */
export type CloseRecord = { code: number; reason: string; by: string; reconnect: boolean };

/** Everything the scenarios look at. */
export interface RecorderView {
  items: Record<string, RecordedItem[]>;
  states: string[];
  lastClose: CloseRecord | null;
  /**
   * Every close, in order, as the client reported it when its state changed. `lastClose` alone
   * races the next attempt: with a short backoff, a refused reconnect replaces it before the test
   * reads it.
   */
  closes: CloseRecord[];
  connectionState: string;
  opens: number;
  tokenCalls: number;
  duplicates: number;
}

/** Options the scenarios pass (plain JSON, so they cross into the page). */
export interface RecorderOptions {
  /** Tokens `getToken` returns, one per call; the last repeats. */
  tokens?: string[];
  heartbeatMs?: number;
  connectTimeoutMs?: number;
  backoffMinMs?: number;
  backoffMaxMs?: number;
}

/** One client under test and its records. */
export class Recorder {
  readonly client: HeraldClient;
  readonly #subs = new Map<string, Subscription>();
  readonly #items: Record<string, RecordedItem[]> = {};
  readonly #states: string[] = [];
  readonly #closes: CloseRecord[] = [];
  #lastRecorded: object | null = null;
  #tokenCalls = 0;

  constructor(url: string, options: RecorderOptions = {}) {
    const tokens = options.tokens ?? [];
    this.client = connect(url, {
      getToken: () => {
        const token = tokens[Math.min(this.#tokenCalls, tokens.length - 1)];
        this.#tokenCalls++;
        return token;
      },
      backoff: { minMs: options.backoffMinMs ?? 50, maxMs: options.backoffMaxMs ?? 400 },
      ...(options.heartbeatMs !== undefined && { heartbeatMs: options.heartbeatMs }),
      ...(options.connectTimeoutMs !== undefined &&
        { connectTimeoutMs: options.connectTimeoutMs }),
    });
    this.#states.push(this.client.connectionState);
    this.client.onState((state, lastClose) => {
      this.#states.push(state);
      if (state !== "open" && lastClose !== null && lastClose !== this.#lastRecorded) {
        this.#lastRecorded = lastClose;
        this.#closes.push({ ...lastClose });
      }
    });
  }

  /** Subscribes under `name` and records its items until it ends. */
  subscribe(
    name: string,
    topic: string,
    options: { appId?: string; snapshot?: boolean; bufferSize?: number } = {},
  ): void {
    const subscription = this.client.subscribe(topic, options);
    this.#subs.set(name, subscription);
    const items: RecordedItem[] = this.#items[name] ??= [];
    void (async () => {
      for await (const item of subscription) {
        if (item.kind === "event") {
          const { seq, id, type, appId } = item.event;
          items.push({ kind: "event", seq, id, type, ...(appId !== undefined && { appId }) });
        } else if (item.kind === "snapshot") {
          const state = item.state as {
            seq: string;
            apps?: { appId: string }[];
            app?: { appId: string } | null;
          };
          const apps = state.apps?.map((app) => app.appId) ?? (state.app ? [state.app.appId] : []);
          items.push({ kind: "snapshot", reason: item.reason, seq: state.seq, apps });
        } else {
          items.push({ ...item });
        }
      }
    })();
  }

  /** Waits until the subscription `name` is confirmed by the hub. */
  ready(name: string): Promise<void> {
    return this.#subs.get(name)!.ready;
  }

  unsubscribe(name: string): void {
    this.#subs.get(name)?.unsubscribe();
  }

  /** Publishes through the client (`POST /events` with the token from getToken). */
  async publish(events: { type: string; appId?: string; payload?: Record<string, string> }[]) {
    return (await this.client.publish(events)).map((accepted) => accepted.seq);
  }

  /** Tells the client the machine is back online (the event a browser fires). */
  wake(): void {
    globalThis.dispatchEvent(new Event("online"));
  }

  view(): RecorderView {
    const lastClose = this.client.lastClose;
    return {
      items: structuredClone(this.#items),
      states: [...this.#states],
      lastClose: lastClose && { ...lastClose },
      closes: this.#closes.map((close) => ({ ...close })),
      connectionState: this.client.connectionState,
      opens: this.client.opens,
      tokenCalls: this.#tokenCalls,
      duplicates: this.client.duplicatesDropped,
    };
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
