/**
 * The HTTP edge's own checks, before any route: the `Host` allow-list (against DNS rebinding)
 * the caps on long-lived connections (WebSocket and SSE) per client IP, per tenant and in total,
 * and which address counts as the client's (`X-Forwarded-For` only from a trusted proxy).
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

/** Why a connection was refused: too many in total, from this IP, or of this tenant. */
export type ConnectionRefusal = "total" | "per_ip" | "per_tenant";

/**
 * Counts the long-lived connections held, in total, per client IP and per tenant (this
 * process's: with several nodes each counts its own).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ConnectionLimiter } from "./edge.ts";
 * const limiter = new ConnectionLimiter(10, 5, 1);
 * const release = limiter.acquire("10.0.0.1", "acme");
 * assert.equal(typeof release, "function");
 * assert.equal(limiter.acquire("10.0.0.2", "acme"), "per_tenant");
 * (release as () => void)();
 * assert.equal(typeof limiter.acquire("10.0.0.2", "acme"), "function");
 * ```
 */
export class ConnectionLimiter {
  readonly #max: number;
  readonly #maxPerIp: number;
  readonly #maxPerTenant: number;
  readonly #perIp = new Map<string, number>();
  readonly #perTenant = new Map<string, number>();
  #total = 0;

  constructor(max: number, maxPerIp: number, maxPerTenant = Infinity) {
    this.#max = max;
    this.#maxPerIp = maxPerIp;
    this.#maxPerTenant = maxPerTenant;
  }

  get total(): number {
    return this.#total;
  }

  /**
   * Takes a slot for `ip`; returns a release function (idempotent), or why it was refused.
   */
  acquire(ip: string, tenant = ""): (() => void) | ConnectionRefusal {
    if (this.#total >= this.#max) return "total";
    if ((this.#perIp.get(ip) ?? 0) >= this.#maxPerIp) return "per_ip";
    if ((this.#perTenant.get(tenant) ?? 0) >= this.#maxPerTenant) return "per_tenant";
    add(this.#perIp, ip, 1);
    add(this.#perTenant, tenant, 1);
    this.#total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#total--;
      add(this.#perIp, ip, -1);
      add(this.#perTenant, tenant, -1);
    };
  }
}

function add(counts: Map<string, number>, key: string, by: number): void {
  const next = (counts.get(key) ?? 0) + by;
  if (next <= 0) counts.delete(key);
  else counts.set(key, next);
}

/**
 * The client IP of a request, from Deno.serve's handler info ("" when unknown). When the peer
 * is one of `trustedProxies`, the right-most `X-Forwarded-For` address that is not itself a
 * trusted proxy is the client's (the left-most ones are whatever the client claimed).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { clientIp } from "./edge.ts";
 * const info = { remoteAddr: { transport: "tcp", hostname: "10.0.0.9", port: 1 } } as const;
 * const request = new Request("http://hub/ws", { headers: { "x-forwarded-for": "6.6.6.6, 1.2.3.4" } });
 * assert.equal(clientIp(info, request, ["10.0.0.9"]), "1.2.3.4");
 * assert.equal(clientIp(info, request, []), "10.0.0.9", "an untrusted peer's header is ignored");
 * ```
 */
export function clientIp(
  info: { readonly remoteAddr?: Deno.Addr } | undefined,
  request?: Request,
  trustedProxies: readonly string[] = [],
): string {
  const addr = info?.remoteAddr;
  const peer = addr !== undefined && "hostname" in addr ? addr.hostname : "";
  if (request === undefined || !trustedProxies.includes(peer)) return peer;
  const forwarded = request.headers.get("x-forwarded-for");
  if (forwarded === null) return peer;
  const hops = forwarded.split(",").map((hop) => hop.trim()).filter((hop) => hop !== "");
  for (let index = hops.length - 1; index >= 0; index--) {
    const hop = hops[index]!;
    if (!trustedProxies.includes(hop)) return hop.slice(0, 64);
  }
  return peer;
}
