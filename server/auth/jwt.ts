/**
 * `HERALD_AUTH=jwt`: JSON Web Tokens verified with `jose`. Keys: an HS256 shared secret, a PEM
 * public key (RS256, ES256 or EdDSA), or a JWKS URL whose keys are cached, refetched on an
 * unknown `kid` (at most once per {@linkcode JWKS_COOLDOWN_MS}) and every
 * `HERALD_JWT_JWKS_REFRESH_SECONDS`; a failed fetch keeps the cached keys. Only the algorithms
 * of the configured key are accepted, so `alg: none` and HS/RS confusion are refused.
 * Claims: `sub`, `tenant`, `scope` (space-separated), `exp` (required), `nbf`, and `aud`/`iss`
 * when configured, with a clock skew allowance.
 * @module
 */

import {
  createLocalJWKSet,
  errors,
  importSPKI,
  type JSONWebKeySet,
  jwtVerify,
  type JWTVerifyGetKey,
} from "jose";
import type { Clock } from "../../hub/clock.ts";
import type { Principal } from "../../hub/principal.ts";
import type { Config } from "../config.ts";
import { logger } from "../log.ts";
import { grantsOf, isTenantName } from "./scopes.ts";

/** An unknown `kid` refetches the JWKS at most this often. */
export const JWKS_COOLDOWN_MS = 10_000;

const log = logger("auth");

/** A verified token's principal, or why it was refused (safe to answer: no token in it). */
export type JwtOutcome = { ok: true; principal: Principal } | { ok: false; message: string };

type KeyInput = Parameters<typeof jwtVerify>[1];

/** The JWKS at a URL, cached; a failed fetch keeps what was cached. */
export class JwksCache {
  readonly #url: string;
  readonly #timeoutMs: number;
  readonly #refreshMs: number;
  readonly #clock: Clock;
  readonly #fetch: typeof fetch;
  #keys: ReturnType<typeof createLocalJWKSet> | null = null;
  #fetchedAt = -Infinity;
  #attemptedAt = -Infinity;
  #inflight: Promise<void> | null = null;

  constructor(
    url: string,
    options: { timeoutMs: number; refreshMs: number; clock: Clock; fetch?: typeof fetch },
  ) {
    this.#url = url;
    this.#timeoutMs = options.timeoutMs;
    this.#refreshMs = options.refreshMs;
    this.#clock = options.clock;
    this.#fetch = options.fetch ?? fetch;
  }

  /** The key resolver `jwtVerify` calls. */
  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    const now = this.#clock.now();
    if (this.#keys === null) await this.refresh();
    else if (now - this.#fetchedAt > this.#refreshMs) void this.refresh();
    if (this.#keys === null) throw new errors.JWKSNoMatchingKey();
    try {
      return await this.#keys(header, token);
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey)) throw error;
      if (now - this.#attemptedAt < JWKS_COOLDOWN_MS) throw error;
      await this.refresh();
      return await this.#keys(header, token);
    }
  };

  /** Fetches the JWKS once (concurrent callers share the fetch). */
  refresh(): Promise<void> {
    this.#inflight ??= this.#load().finally(() => (this.#inflight = null));
    return this.#inflight;
  }

  async #load(): Promise<void> {
    this.#attemptedAt = this.#clock.now();
    try {
      const response = await this.#fetch(this.#url, {
        signal: AbortSignal.timeout(this.#timeoutMs),
        headers: { accept: "application/json" },
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const jwks = await response.json() as JSONWebKeySet;
      if (!Array.isArray(jwks?.keys)) throw new Error("no keys array");
      this.#keys = createLocalJWKSet(jwks);
      this.#fetchedAt = this.#clock.now();
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      log.warning("Could not fetch the JWKS from {url} ({reason}); keeping the cached keys", {
        url: this.#url,
        reason,
      });
    }
  }
}

/** Verifies JWTs against the configured key and turns their claims into a principal. */
export class JwtVerifier {
  readonly #key: KeyInput | JWTVerifyGetKey;
  readonly #algorithms: string[];
  readonly #config: Pick<Config, "jwtAudience" | "jwtIssuer" | "jwtClockSkewSeconds">;
  readonly #clock: Clock;

  private constructor(
    key: KeyInput | JWTVerifyGetKey,
    algorithms: string[],
    config: Pick<Config, "jwtAudience" | "jwtIssuer" | "jwtClockSkewSeconds">,
    clock: Clock,
  ) {
    this.#key = key;
    this.#algorithms = algorithms;
    this.#config = config;
    this.#clock = clock;
  }

  /** Builds the verifier the configuration names (reads the key file, does not fetch a JWKS). */
  static async create(
    config: Pick<
      Config,
      | "jwtSecret"
      | "jwtPublicKeyFile"
      | "jwtAlgorithm"
      | "jwksUrl"
      | "jwksRefreshSeconds"
      | "jwksTimeoutMs"
      | "jwtAudience"
      | "jwtIssuer"
      | "jwtClockSkewSeconds"
    >,
    clock: Clock,
    fetcher?: typeof fetch,
  ): Promise<JwtVerifier> {
    if (config.jwtSecret !== undefined) {
      return new JwtVerifier(new TextEncoder().encode(config.jwtSecret), ["HS256"], config, clock);
    }
    if (config.jwtPublicKeyFile !== undefined) {
      const pem = await Deno.readTextFile(config.jwtPublicKeyFile);
      const key = await importSPKI(pem, config.jwtAlgorithm);
      return new JwtVerifier(key, [config.jwtAlgorithm], config, clock);
    }
    if (config.jwksUrl !== undefined) {
      const cache = new JwksCache(config.jwksUrl, {
        timeoutMs: config.jwksTimeoutMs,
        refreshMs: config.jwksRefreshSeconds * 1000,
        clock,
        ...(fetcher === undefined ? {} : { fetch: fetcher }),
      });
      return new JwtVerifier(cache.getKey, ["RS256", "ES256", "EdDSA"], config, clock);
    }
    throw new Error("HERALD_AUTH=jwt needs a key");
  }

  /** Verifies a token; never throws. */
  async verify(token: string): Promise<JwtOutcome> {
    let payload;
    try {
      const options = {
        algorithms: this.#algorithms,
        clockTolerance: this.#config.jwtClockSkewSeconds,
        currentDate: new Date(this.#clock.now()),
        requiredClaims: ["exp", "sub"],
        ...(this.#config.jwtAudience === undefined ? {} : { audience: this.#config.jwtAudience }),
        ...(this.#config.jwtIssuer === undefined ? {} : { issuer: this.#config.jwtIssuer }),
      };
      // jwtVerify has one overload per key kind.
      const result = typeof this.#key === "function"
        ? await jwtVerify(token, this.#key as JWTVerifyGetKey, options)
        : await jwtVerify(token, this.#key as KeyInput, options);
      payload = result.payload;
    } catch (error) {
      return { ok: false, message: refusalMessage(error) };
    }
    const { sub, tenant, scope, exp } = payload;
    if (typeof sub !== "string" || sub.length === 0 || sub.length > 256) {
      return { ok: false, message: "the token's sub claim must be a non-empty string" };
    }
    if (!isTenantName(tenant)) {
      return { ok: false, message: "the token's tenant claim is missing or not a tenant name" };
    }
    if (scope !== undefined && typeof scope !== "string") {
      return { ok: false, message: "the token's scope claim must be a space-separated string" };
    }
    const grants = grantsOf((scope ?? "").split(" ").filter((part) => part !== ""), false);
    if (typeof grants === "string") return { ok: false, message: grants };
    return {
      ok: true,
      principal: {
        tenant,
        subject: sub,
        may: grants,
        expiresAt: typeof exp === "number" ? exp * 1000 : null,
        credential: `jwt:${tenant}/${sub}`,
      },
    };
  }
}

/** What a refused token is told: the kind of problem, never the token or a key. */
function refusalMessage(error: unknown): string {
  if (error instanceof errors.JWTExpired) return "the token expired";
  if (error instanceof errors.JWTClaimValidationFailed) {
    return `the token's ${error.claim} claim is not accepted (${error.reason})`;
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return "the token's algorithm is not accepted";
  if (error instanceof errors.JWKSNoMatchingKey) return "no key matches the token's kid";
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return "the token's signature is not valid";
  }
  return "the token is not a valid JWT";
}
