/**
 * Keys issued to one agent on registration: `hak_<agent id, base64url>_<64 hex digits>`. The
 * agent id inside lets the auth seam find the stored hash without a lookup table; only the
 * SHA-256 of a key is stored, never the key.
 * @module
 */

import { timingSafeEqual } from "node:crypto";

const PREFIX = "hak_";
const encoder = new TextEncoder();

function base64url(text: string): string {
  const bytes = encoder.encode(text);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * A new random key for `agentId`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { agentOfKey, issueAgentKey } from "./keys.ts";
 * const key = issueAgentKey("k8s-prod-1");
 * assert.match(key, /^hak_[\w-]+_[0-9a-f]{64}$/);
 * assert.equal(agentOfKey(key), "k8s-prod-1");
 * assert.notEqual(issueAgentKey("k8s-prod-1"), key);
 * ```
 */
export function issueAgentKey(agentId: string): string {
  const secret = Array.from(
    crypto.getRandomValues(new Uint8Array(32)),
    (byte) => byte.toString(16).padStart(2, "0"),
  ).join("");
  return `${PREFIX}${base64url(agentId)}_${secret}`;
}

/**
 * The agent id an issued key names, or null when `key` is not an issued key.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { agentOfKey } from "./keys.ts";
 * assert.equal(agentOfKey("some-shared-key"), null);
 * assert.equal(agentOfKey("hak_!!_00"), null);
 * ```
 */
export function agentOfKey(key: string): string | null {
  const match = /^hak_([A-Za-z0-9_-]+)_([0-9a-f]{64})$/.exec(key);
  if (match === null) return null;
  try {
    const binary = atob(match[1]!.replace(/-/g, "+").replace(/_/g, "/"));
    return new TextDecoder("utf-8", { fatal: true }).decode(
      Uint8Array.from(binary, (char) => char.charCodeAt(0)),
    );
  } catch {
    return null;
  }
}

/**
 * The SHA-256 of a key, in hex: what the store keeps.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { agentKeyHash } from "./keys.ts";
 * assert.equal((await agentKeyHash("k")).length, 64);
 * ```
 */
export async function agentKeyHash(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", encoder.encode(key));
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/**
 * True when `key` hashes to `hash`, compared in constant time.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { agentKeyHash, keyMatches } from "./keys.ts";
 * const hash = await agentKeyHash("k");
 * assert.equal(await keyMatches("k", hash), true);
 * assert.equal(await keyMatches("x", hash), false);
 * ```
 */
export async function keyMatches(key: string, hash: string): Promise<boolean> {
  const presented = encoder.encode(await agentKeyHash(key));
  const stored = encoder.encode(hash);
  return presented.byteLength === stored.byteLength && timingSafeEqual(presented, stored);
}
