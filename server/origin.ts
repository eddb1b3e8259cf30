/**
 * The origin check on WebSocket upgrade (and SSE): browsers send `Origin`, so a page on a
 * foreign site cannot open a socket with the user's network position.
 * @module
 */

const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

/**
 * True when the request may connect: no `Origin` (CLI, curl), a listed origin, a loopback
 * origin on any port, or the hub's own origin (its host and port are the request's `Host`: the
 * dashboard the hub serves). The scheme of the own origin is not compared, because a proxy that
 * terminates TLS forwards `https:` pages' requests as `http:`; a rebinding page that forges the
 * host is stopped earlier by the `Host` check (`HERALD_ALLOWED_HOSTS`, docs/security.md).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { originAllowed } from "./origin.ts";
 * assert.equal(originAllowed("https://hub.example", [], "hub.example"), true);
 * assert.equal(originAllowed("https://evil.example", [], "hub.example"), false);
 * assert.equal(originAllowed("http://localhost:3000", []), true);
 * ```
 */
export function originAllowed(
  origin: string | null,
  allowed: readonly string[],
  ownHost: string | null = null,
): boolean {
  if (origin === null) return true;
  if (allowed.includes(origin)) return true;
  try {
    const url = new URL(origin);
    if (url.protocol !== "http:" && url.protocol !== "https:") return false;
    return LOOPBACK_HOSTS.has(url.hostname) || (ownHost !== null && url.host === ownHost);
  } catch {
    return false;
  }
}
