/**
 * HTTP error answers: one JSON shape, `{"error":{"code","message"}}`, and one table of codes.
 * @module
 */

/** Codes of HTTP error bodies, with their status. */
export const HTTP_ERRORS = {
  bad_json: 400,
  bad_event: 400,
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  origin_forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  agent_offline: 409,
  request_timeout: 408,
  body_too_large: 413,
  batch_too_large: 413,
  unsupported_media_type: 415,
  host_not_allowed: 421,
  headers_too_large: 431,
  upgrade_required: 426,
  too_many_connections: 429,
  rate_limited: 429,
  internal_error: 500,
  unavailable: 503,
  server_busy: 503,
} as const;

/** One of {@linkcode HTTP_ERRORS}. */
export type HttpErrorCode = keyof typeof HTTP_ERRORS;

/** A JSON response. */
export function json(body: unknown, status = 200, headers: HeadersInit = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

/** An error response with the status its code implies. */
export function httpError(
  code: HttpErrorCode,
  message: string,
  extra: Record<string, unknown> = {},
  headers: HeadersInit = {},
): Response {
  return json({ error: { code, message, ...extra } }, HTTP_ERRORS[code], headers);
}
