/**
 * Keys issued to one agent on registration: `hak_<agent id, base64url>_<64 hex digits>`, the
 * digits an HMAC of the tenant and agent id under the hub-wide agent key. The auth seam checks
 * one by deriving it again; the store keeps only its SHA-256, never the key.
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
 * The key issued to `agentId` of `tenant`: an HMAC-SHA256 of both under the hub-wide agent key
 * (`secret`). Derived, not random, so it survives a restart of a hub whose store is in memory
 * and every node can check it; rotating the hub-wide key revokes every issued key, and rejecting
 * an agent refuses it whatever key it holds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { agentOfKey, deriveAgentKey } from "./keys.ts";
 * const key = await deriveAgentKey("hub-wide-secret", "default", "k8s-prod-1");
 * assert.match(key, /^hak_[\w-]+_[0-9a-f]{64}$/);
 * assert.equal(agentOfKey(key), "k8s-prod-1");
 * assert.equal(await deriveAgentKey("hub-wide-secret", "default", "k8s-prod-1"), key);
 * assert.notEqual(await deriveAgentKey("hub-wide-secret", "default", "k8s-prod-2"), key);
 * ```
 */
export async function deriveAgentKey(
  secret: string,
  tenant: string,
  agentId: string,
): Promise<string> {
  const hmacKey = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = await crypto.subtle.sign(
    "HMAC",
    hmacKey,
    encoder.encode(`${tenant.length}:${tenant}:${agentId}`),
  );
  const hex = Array.from(new Uint8Array(mac), (byte) => byte.toString(16).padStart(2, "0"))
    .join("");
  return `${PREFIX}${base64url(agentId)}_${hex}`;
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
 * True when `presented` is the key issued to its agent in `tenant`, compared in constant time.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deriveAgentKey, isIssuedKey } from "./keys.ts";
 * const key = await deriveAgentKey("secret", "default", "k1");
 * assert.equal(await isIssuedKey("secret", "default", key), true);
 * assert.equal(await isIssuedKey("other-secret", "default", key), false);
 * assert.equal(await isIssuedKey("secret", "default", "hak_azE_" + "0".repeat(64)), false);
 * ```
 */
export async function isIssuedKey(
  secret: string,
  tenant: string,
  presented: string,
): Promise<boolean> {
  const agentId = agentOfKey(presented);
  if (agentId === null) return false;
  const expected = encoder.encode(await deriveAgentKey(secret, tenant, agentId));
  const bytes = encoder.encode(presented);
  return bytes.byteLength === expected.byteLength && timingSafeEqual(bytes, expected);
}
