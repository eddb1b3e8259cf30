/**
 * Test helpers for the identity suites: hubs in `token` and `jwt` mode served in this process,
 * a tokens file in a temporary directory, and JWTs signed with `jose`.
 * @module
 */

import { SignJWT } from "jose";
import { systemClock } from "../hub/clock.ts";
import { Metrics } from "../hub/metrics.ts";
import { createAuthenticator } from "../server/auth.ts";
import { loadConfig } from "../server/config.ts";
import { startTestHub, TEST_TOKEN, type TestHub } from "./_harness.ts";

/** An HS256 secret for the jwt-mode hubs (at least 32 bytes). */
export const JWT_SECRET = "identity-test-secret-0123456789abcdef";

/** One entry of a tokens file. */
export interface TokenEntry {
  readonly token: string;
  readonly tenant: string;
  readonly name: string;
  readonly scopes: readonly string[];
}

/** Starts a hub whose auth seam is the one `env` configures (`HERALD_AUTH` and its settings). */
export async function startAuthHub(env: Record<string, string>): Promise<TestHub> {
  const config = loadConfig({
    PORT: "0",
    HERALD_HOSTNAME: "127.0.0.1",
    HERALD_PUBLISH_TOKEN: TEST_TOKEN,
    ...env,
  });
  const metrics = new Metrics();
  const auth = await createAuthenticator(config, TEST_TOKEN, systemClock, { metrics });
  return startTestHub(env, { auth, metrics });
}

/** A `jwt`-mode hub whose credentials expire exactly at `exp` and are warned `warningSeconds` before. */
export function startExpiringJwtHub(warningSeconds: number): Promise<TestHub> {
  return startAuthHub({
    HERALD_AUTH: "jwt",
    HERALD_JWT_SECRET: JWT_SECRET,
    HERALD_JWT_CLOCK_SKEW_SECONDS: "0",
    HERALD_EXPIRY_WARNING_SECONDS: String(warningSeconds),
  });
}

/** A tokens file in a fresh temporary directory; `write` replaces its content. */
export async function tokensFile(entries: readonly TokenEntry[]) {
  const dir = await Deno.makeTempDir({ prefix: "herald-tokens-" });
  const path = `${dir}/tokens.json`;
  const write = (text: string) =>
    Deno.writeTextFile(`${path}.tmp`, text).then(() => Deno.rename(`${path}.tmp`, path));
  await write(JSON.stringify({ tokens: entries }));
  return {
    path,
    write,
    writeTokens: (next: readonly TokenEntry[]) => write(JSON.stringify({ tokens: next })),
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

/** Signs an HS256 JWT with {@linkcode JWT_SECRET}: `exp` seconds from now (default 1 hour). */
export function signJwt(
  claims: { sub: string; tenant: string; scope?: string; aud?: string; iss?: string },
  options: { expiresInSeconds?: number; secret?: string; notBefore?: number } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({ ...claims })
    .setProtectedHeader({ alg: "HS256" })
    .setIssuedAt(now)
    .setExpirationTime(now + (options.expiresInSeconds ?? 3600));
  if (options.notBefore !== undefined) jwt.setNotBefore(options.notBefore);
  return jwt.sign(new TextEncoder().encode(options.secret ?? JWT_SECRET));
}

/** POSTs events to a hub with a bearer token. */
export function publishAs(hub: TestHub, token: string, body: unknown): Promise<Response> {
  return hub.publish(body, { authorization: `Bearer ${token}` });
}
