/**
 * Domain errors as HTTP answers, through the one error table (`hub/errors.ts`).
 * @module
 */

import { classifyError } from "../hub/errors.ts";
import type { Refusal } from "./auth.ts";
import { httpError } from "./responses.ts";

/**
 * The HTTP answer to a domain error. A fault of the hub's own is rethrown, so the server's
 * error handler logs it and answers 500.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { answerError } from "./errors.ts";
 * import { BusUnavailableError } from "../hub/bus/bus.ts";
 * const response = answerError(new BusUnavailableError("Redis is down", 2));
 * assert.equal(response.status, 503);
 * assert.equal(response.headers.get("retry-after"), "2");
 * ```
 */
export function answerError(error: unknown, count?: (code: string) => void): Response {
  const answer = classifyError(error);
  if (answer.fault) throw error;
  count?.(answer.http);
  return httpError(
    answer.http,
    answer.message,
    answer.index === undefined ? {} : { index: answer.index },
    answer.retryAfterSeconds === undefined
      ? {}
      : { "retry-after": String(answer.retryAfterSeconds) },
  );
}

/**
 * A refusal of the auth seam as an HTTP answer, with its challenge.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { refuse } from "./errors.ts";
 * const response = refuse({ code: "unauthorized", message: "no", challenge: 'Bearer realm="herald"' });
 * assert.equal(response.status, 401);
 * assert.equal(response.headers.get("www-authenticate"), 'Bearer realm="herald"');
 * ```
 */
export function refuse(refusal: Refusal): Response {
  return httpError(
    refusal.code,
    refusal.message,
    {},
    refusal.challenge === undefined ? {} : { "www-authenticate": refusal.challenge },
  );
}
