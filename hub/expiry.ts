/**
 * Expiry of a live connection's credential: one `token_expiring` warning
 * `HERALD_EXPIRY_WARNING_SECONDS` before (at once when the connection starts inside that window),
 * and a close with 4001 at expiry, unless the connection presents a new credential first
 * (WebSocket `refresh`), which re-arms the watch.
 * @module
 */

import { DISCONNECT } from "../events/codes.ts";
import { encodeTokenExpiring } from "../events/messages.ts";
import type { Client } from "./client.ts";
import type { Clock } from "./clock.ts";

/** Schedules `run` after `ms`; returns its cancel. */
export type Schedule = (run: () => void, ms: number) => () => void;

/** Real timers. */
export const timerSchedule: Schedule = (run, ms) => {
  // setTimeout takes at most 2^31-1 ms; a later deadline re-checks from the first wake.
  const id = setTimeout(run, Math.min(ms, 2 ** 31 - 1));
  return () => clearTimeout(id);
};

/**
 * How a transport delivers the warning: the message type its adapter sees (an SSE event name)
 * and the advice that ends the message, since only a WebSocket can `refresh` in place.
 */
export interface ExpiryWarning {
  readonly type: string;
  readonly advice: string;
}

/** The WebSocket warning: an `error` frame; the client may `refresh`. */
export const REFRESH_WARNING: ExpiryWarning = {
  type: "error",
  advice: 'send {"type":"refresh","token":"..."} or reconnect with a new one',
};

/**
 * Watches one connection's credential expiry. A `warningMs` of 0 sends no warning.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ExpiryWatch, type Schedule } from "./expiry.ts";
 * import { testHub } from "./_test_hub.ts";
 * const { clock, connect } = await testHub();
 * const pending: (() => void)[] = [];
 * const schedule: Schedule = (run) => (pending.push(run), () => {});
 * const { client, transport } = connect();
 * const watch = new ExpiryWatch(client, { clock, warningMs: 1000, schedule });
 * watch.arm(clock.now() + 5000);
 * await clock.advance(4000);
 * pending.shift()!(); // the warning
 * assert.equal(transport.messages.at(-1)!.payload.code, "token_expiring");
 * await clock.advance(1000);
 * pending.shift()!(); // the expiry
 * assert.equal(transport.closed?.code, 4001);
 * ```
 */
export class ExpiryWatch {
  readonly #client: Client;
  readonly #clock: Clock;
  readonly #warningMs: number;
  readonly #warning: ExpiryWarning;
  readonly #schedule: Schedule;
  #cancel: () => void = () => {};
  #expiresAt: number | null = null;

  constructor(
    client: Client,
    deps: { clock: Clock; warningMs: number; warning?: ExpiryWarning; schedule?: Schedule },
  ) {
    this.#client = client;
    this.#clock = deps.clock;
    this.#warningMs = deps.warningMs;
    this.#warning = deps.warning ?? REFRESH_WARNING;
    this.#schedule = deps.schedule ?? timerSchedule;
  }

  /** Watches a credential expiring at `expiresAt` (ms since the epoch); null: never expires. */
  arm(expiresAt: number | null | undefined): void {
    this.#cancel();
    this.#cancel = () => {};
    this.#expiresAt = expiresAt ?? null;
    if (this.#expiresAt === null) return;
    this.#next(true);
  }

  /** Stops watching (the connection closed). */
  stop(): void {
    this.#cancel();
    this.#cancel = () => {};
    this.#expiresAt = null;
  }

  /** Warns (once, while `warn`) when inside the window, closes at expiry, else waits for either. */
  #next(warn: boolean): void {
    const expiresAt = this.#expiresAt;
    if (expiresAt === null || this.#client.closed) return;
    const left = expiresAt - this.#clock.now();
    if (left <= 0) {
      this.#client.close(DISCONNECT.tokenExpired);
      return;
    }
    if (warn && this.#warningMs > 0) {
      if (left > this.#warningMs) {
        // Wakes into #next rather than straight into the warning: a capped timer wakes early.
        this.#cancel = this.#schedule(() => this.#next(true), left - this.#warningMs);
        return;
      }
      this.#warn(expiresAt, left);
    }
    this.#cancel = this.#schedule(() => this.#next(false), left);
  }

  #warn(expiresAt: number, left: number): void {
    const seconds = Math.round(left / 1000);
    this.#client.reply(
      encodeTokenExpiring(
        expiresAt,
        `the credential expires in ${seconds} s: ${this.#warning.advice}`,
      ),
      this.#warning.type,
    );
  }
}
