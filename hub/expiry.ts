/**
 * Expiry of a live connection's credential: a `token_expiring` error frame
 * `HERALD_EXPIRY_WARNING_SECONDS` before, and a close with 4001 at expiry, unless the connection
 * presents a new credential first (WebSocket `refresh`), which re-arms the watch.
 * @module
 */

import { DISCONNECT, ERROR_CODES } from "../events/codes.ts";
import { encodeError } from "../events/messages.ts";
import type { Client } from "./client.ts";
import type { Clock } from "./clock.ts";

/** Schedules `run` after `ms`; returns its cancel. */
export type Schedule = (run: () => void, ms: number) => () => void;

/** Real timers. */
export const timerSchedule: Schedule = (run, ms) => {
  // setTimeout takes at most 2^31-1 ms; a later expiry re-arms from the first wake.
  const id = setTimeout(run, Math.min(ms, 2 ** 31 - 1));
  return () => clearTimeout(id);
};

/**
 * Watches one connection's credential expiry.
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
  readonly #schedule: Schedule;
  #cancel: () => void = () => {};
  #expiresAt: number | null = null;

  constructor(client: Client, deps: { clock: Clock; warningMs: number; schedule?: Schedule }) {
    this.#client = client;
    this.#clock = deps.clock;
    this.#warningMs = deps.warningMs;
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

  #next(warn: boolean): void {
    const expiresAt = this.#expiresAt;
    if (expiresAt === null || this.#client.closed) return;
    const left = expiresAt - this.#clock.now();
    if (left <= 0) {
      this.#client.close(DISCONNECT.tokenExpired);
      return;
    }
    if (warn && left > this.#warningMs) {
      this.#cancel = this.#schedule(() => this.#warn(), left - this.#warningMs);
      return;
    }
    if (warn) this.#warn();
    else this.#cancel = this.#schedule(() => this.#next(false), left);
  }

  #warn(): void {
    const expiresAt = this.#expiresAt;
    if (expiresAt === null || this.#client.closed) return;
    const seconds = Math.max(0, Math.round((expiresAt - this.#clock.now()) / 1000));
    this.#client.reply(
      encodeError({
        code: ERROR_CODES.tokenExpiring,
        message:
          `the credential expires in ${seconds} s: send {"type":"refresh","token":"..."} or reconnect with a new one`,
      }),
      "error",
    );
    this.#next(false);
  }
}
