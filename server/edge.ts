/**
 * The HTTP edge's own checks, before any route: the `Host` allow-list (against DNS rebinding)
 * and the caps on long-lived connections (WebSocket and SSE) per client IP and in total.
 * @module
 */

import type { Config } from "./config.ts";

const LOOPBACK_NAMES = ["localhost", "127.0.0.1", "[::1]"];
const LOOPBACK_BINDS = new Set(["localhost", "127.0.0.1", "::1", "[::1]"]);

/**
 * The host names served: `HERALD_ALLOWED_HOSTS` when set; otherwise only the loopback names
 * when listening on loopback, else any (null).
 */
export function allowedHosts(
  config: Pick<Config, "allowedHosts" | "hostname">,
): readonly string[] | null {
  if (config.allowedHosts !== null) return config.allowedHosts;
  return LOOPBACK_BINDS.has(config.hostname) ? LOOPBACK_NAMES : null;
}

/** True when the request's host (without port) is served. */
export function hostAllowed(url: URL, allowed: readonly string[] | null): boolean {
  return allowed === null || allowed.includes(url.hostname);
}

/** Why a connection was refused: too many in total, or from this IP. */
export type ConnectionRefusal = "total" | "per_ip";

/** Counts the long-lived connections held, in total and per client IP. */
export class ConnectionLimiter {
  readonly #max: number;
  readonly #maxPerIp: number;
  readonly #perIp = new Map<string, number>();
  #total = 0;

  constructor(max: number, maxPerIp: number) {
    this.#max = max;
    this.#maxPerIp = maxPerIp;
  }

  get total(): number {
    return this.#total;
  }

  /**
   * Takes a slot for `ip`; returns a release function (idempotent), or why it was refused.
   */
  acquire(ip: string): (() => void) | ConnectionRefusal {
    if (this.#total >= this.#max) return "total";
    const held = this.#perIp.get(ip) ?? 0;
    if (held >= this.#maxPerIp) return "per_ip";
    this.#perIp.set(ip, held + 1);
    this.#total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#total--;
      const left = (this.#perIp.get(ip) ?? 1) - 1;
      if (left <= 0) this.#perIp.delete(ip);
      else this.#perIp.set(ip, left);
    };
  }
}

/** The client IP of a request, from Deno.serve's handler info ("" when unknown). */
export function clientIp(info: { readonly remoteAddr?: Deno.Addr } | undefined): string {
  const addr = info?.remoteAddr;
  return addr !== undefined && "hostname" in addr ? addr.hostname : "";
}
