/**
 * Where a request's credential comes from: `Authorization: Bearer`, `?token=`, a
 * `Sec-WebSocket-Protocol` entry `bearer.<token>` (browsers cannot set headers on a WebSocket
 * or an EventSource), and `X-Agent-API-Key` for agents. Nothing here logs or echoes a token.
 * @module
 */

import { bearerToken } from "../token.ts";

/** The subprotocol prefix that carries a token. */
export const BEARER_PROTOCOL_PREFIX = "bearer.";

/** Longest credential read; a longer one is refused without being parsed. */
export const MAX_CREDENTIAL_LENGTH = 16 * 1024;

/**
 * The `Sec-WebSocket-Protocol` entry carrying a token (the whole entry, to echo), or null.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bearerProtocol } from "./credentials.ts";
 * const request = new Request("http://hub/ws", {
 *   headers: { "sec-websocket-protocol": "herald.v1, bearer.abc" },
 * });
 * assert.equal(bearerProtocol(request), "bearer.abc");
 * ```
 */
export function bearerProtocol(request: Request): string | null {
  const header = request.headers.get("sec-websocket-protocol");
  if (header === null) return null;
  for (const entry of header.split(",")) {
    const trimmed = entry.trim();
    if (
      trimmed.startsWith(BEARER_PROTOCOL_PREFIX) && trimmed.length > BEARER_PROTOCOL_PREFIX.length
    ) return trimmed;
  }
  return null;
}

/**
 * The credential a request presents for an ordinary access, first of: `Authorization: Bearer`,
 * the `bearer.` subprotocol, `?token=`. Null when none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { presentedToken } from "./credentials.ts";
 * assert.equal(presentedToken(new Request("http://hub/ws?token=abc")), "abc");
 * assert.equal(presentedToken(new Request("http://hub/ws")), null);
 * ```
 */
export function presentedToken(request: Request): string | null {
  const bearer = bearerToken(request);
  if (bearer !== null) return bearer;
  const protocol = bearerProtocol(request);
  if (protocol !== null) return protocol.slice(BEARER_PROTOCOL_PREFIX.length);
  let query: string | null = null;
  try {
    query = new URL(request.url).searchParams.get("token");
  } catch {
    return null;
  }
  return query === "" ? null : query;
}

/**
 * An agent's credential: `X-Agent-API-Key`, or null.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { agentKey } from "./credentials.ts";
 * const request = new Request("http://hub/agents", { headers: { "x-agent-api-key": "k" } });
 * assert.equal(agentKey(request), "k");
 * ```
 */
export function agentKey(request: Request): string | null {
  const key = request.headers.get("x-agent-api-key")?.trim();
  return key === undefined || key === "" ? null : key;
}
