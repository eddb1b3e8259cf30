/**
 * The origin check on WebSocket upgrade (and SSE): browsers send `Origin`, so a page on a
 * foreign site cannot open a socket with the user's network position.
 * @module
 */

const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

/**
 * True when the request may connect: no `Origin` (CLI, curl), a listed origin, or a loopback
 * origin on any port.
 */
export function originAllowed(origin: string | null, allowed: readonly string[]): boolean {
  if (origin === null) return true;
  if (allowed.includes(origin)) return true;
  try {
    const url = new URL(origin);
    return (url.protocol === "http:" || url.protocol === "https:") &&
      LOOPBACK_HOSTS.has(url.hostname);
  } catch {
    return false;
  }
}
