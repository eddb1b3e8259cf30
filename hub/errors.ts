/**
 * The error table: every domain error the hub raises maps here, and only here, to the error
 * code of a WebSocket reply, the HTTP error code (and so the status, see `server/responses.ts`)
 * of a request, and whether it is a fault of the hub's own. A fault is logged; it answers
 * `internal_error` on a connection that stays open, 500 over HTTP, and a connection it ends is
 * closed with {@linkcode DISCONNECT}`.internal` (1011), never with 1001.
 * @module
 */

import { DISCONNECT, type Disconnect, ERROR_CODES, type ErrorCode } from "../events/codes.ts";
import { BusUnavailableError } from "./bus/bus.ts";
import { EventTooLargeError, HistoryUnavailableError } from "./history/history.ts";

/**
 * Thrown by a request handler to answer with an error frame instead of a response.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RequestError } from "./errors.ts";
 * const error = new RequestError("not_found", "no app \"web\" in state");
 * assert.equal(error.code, "not_found");
 * ```
 */
export class RequestError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = "RequestError";
    this.code = code;
  }
}

/** The HTTP code of a {@linkcode RequestError} whose code is not `bad_request`'s. */
const REQUEST_ERROR_HTTP: Partial<Record<ErrorCode, DomainHttpCode>> = {
  [ERROR_CODES.notFound]: "not_found",
  [ERROR_CODES.forbidden]: "forbidden",
  [ERROR_CODES.agentOffline]: "agent_offline",
};

/** HTTP error codes a domain error can answer with (statuses in `server/responses.ts`). */
export type DomainHttpCode =
  | "bad_event"
  | "bad_request"
  | "batch_too_large"
  | "not_found"
  | "forbidden"
  | "agent_offline"
  | "unavailable";

/** How one error is answered. */
export type ErrorAnswer =
  | {
    readonly fault: false;
    /** Code of the WebSocket `error` reply. */
    readonly code: ErrorCode;
    /** Code of the HTTP error body. */
    readonly http: DomainHttpCode;
    readonly message: string;
    /** Seconds to wait before retrying (`Retry-After`), for `unavailable`. */
    readonly retryAfterSeconds?: number;
    /** Index of the offending event in a batch. */
    readonly index?: number;
  }
  | {
    readonly fault: true;
    readonly code: typeof ERROR_CODES.internal;
    /** The close of a connection this fault ends. */
    readonly close: Disconnect;
    readonly error: unknown;
  };

/**
 * Classifies an error raised while answering a message or a request.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { classifyError, RequestError } from "./errors.ts";
 * import { BusUnavailableError } from "./bus/bus.ts";
 * const busDown = classifyError(new BusUnavailableError("Redis is down", 3));
 * assert.ok(!busDown.fault && busDown.code === "unavailable" && busDown.retryAfterSeconds === 3);
 * const missing = classifyError(new RequestError("not_found", "no app"));
 * assert.ok(!missing.fault && missing.http === "not_found");
 * const bug = classifyError(new TypeError("x is undefined"));
 * assert.ok(bug.fault && bug.code === "internal_error" && bug.close.code === 1011);
 * ```
 */
export function classifyError(error: unknown): ErrorAnswer {
  if (error instanceof EventTooLargeError) {
    return error.index === null
      ? {
        fault: false,
        code: ERROR_CODES.badEvent,
        http: "batch_too_large",
        message: error.message,
      }
      : {
        fault: false,
        code: ERROR_CODES.badEvent,
        http: "bad_event",
        message: error.message,
        index: error.index,
      };
  }
  if (error instanceof BusUnavailableError || error instanceof HistoryUnavailableError) {
    return {
      fault: false,
      code: ERROR_CODES.unavailable,
      http: "unavailable",
      message: error.message,
      // The bus knows its reconnect backoff; a history answers per command.
      retryAfterSeconds: error instanceof BusUnavailableError ? error.retryAfterSeconds : 1,
    };
  }
  if (error instanceof RequestError) {
    return {
      fault: false,
      code: error.code,
      http: REQUEST_ERROR_HTTP[error.code] ?? "bad_request",
      message: error.message,
    };
  }
  return { fault: true, code: ERROR_CODES.internal, close: DISCONNECT.internal, error };
}
