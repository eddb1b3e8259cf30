/**
 * The auth seam: the one place that reads credentials and decides a request's tenant and what
 * it may do. Every entry point (`/ws`, `/events/stream`, `POST /events` and the REST reads)
 * calls {@linkcode Authenticator.authenticate} and works with the {@linkcode Principal} it gets,
 * or answers the {@linkcode Refusal}.
 *
 * Contract: `authenticate` never throws for bad credentials (it refuses); a refusal carries the
 * HTTP error code and message to answer with. It may be asynchronous (a token file, a JWT key
 * fetched once). `HERALD_AUTH` picks the implementation ({@linkcode createAuthenticator}):
 * {@linkcode PublishTokenAuth} (`none`), or {@linkcode CredentialAuth} over a tokens file
 * (`token`, `server/auth/tokens_file.ts`) or a JWT verifier (`jwt`, `server/auth/jwt.ts`).
 * Where credentials are read from is `server/auth/credentials.ts`; scopes are
 * `server/auth/scopes.ts`. No refusal, log line or metric label holds a presented credential.
 * @module
 */

import type { Clock } from "../hub/clock.ts";
import type { Metrics } from "../hub/metrics.ts";
import { DEFAULT_TENANT, type Principal, principal, type Reauthorize } from "../hub/principal.ts";
import {
  agentKey,
  BEARER_PROTOCOL_PREFIX,
  bearerProtocol,
  MAX_CREDENTIAL_LENGTH,
  presentedToken,
} from "./auth/credentials.ts";
import { TokensFile } from "./auth/tokens_file.ts";
import type { Config } from "./config.ts";
import { bearerToken, SecretToken } from "./token.ts";

export { DEFAULT_TENANT, type Principal };

/** What a request wants to do, which decides which credentials count. */
export type Access =
  /** Open a WebSocket: reads, and publishing when the connection presents a publish credential. */
  | "connect"
  /** `POST /events`. */
  | "publish"
  /** `/events/stream` and the REST reads. */
  | "read"
  /**
   * An agent registering or connecting: reads `X-Agent-API-Key` (in `token`/`jwt` mode a token
   * with scope `agent`).
   */
  | "agent"
  /** Commanding and approving agents (`POST /agents/...`): needs the `control` (or `admin`) grant. */
  | "control";

/** Why a request is refused: the HTTP error code, message and challenge to answer with. */
export interface Refusal {
  readonly code: "unauthorized" | "forbidden";
  readonly message: string;
  /** `WWW-Authenticate` value, when the client should present a credential. */
  readonly challenge?: string;
}

/** The outcome of authenticating a request. */
export type Authentication =
  | { readonly ok: true; readonly principal: Principal }
  | { readonly ok: false; readonly refusal: Refusal };

/** Turns a request into a principal, or refuses it. */
export interface Authenticator {
  authenticate(request: Request, access: Access): Promise<Authentication>;
  /** Stops watching files and fetching keys (tests build many). */
  close?(): void;
  /**
   * Calls `listener` whenever the credentials it accepts change (`token` mode: each good reload
   * of the tokens file), with how each principal it issued stands now. Absent: they never change
   * while the hub runs.
   */
  onCredentialsChange?(listener: (reauthorize: Reauthorize) => void): void;
}

const ANONYMOUS = principal(DEFAULT_TENANT, "anonymous", false);
// In this mode the publish token is the operator's only credential, so it also carries the
// `control` grant (commanding and approving agents; see docs/security.md).
const PUBLISHES = principal(DEFAULT_TENANT, "publisher", true);
const PUBLISHER: Principal = {
  ...PUBLISHES,
  may: { ...PUBLISHES.may, control: true, admin: true },
};

/**
 * Today's behaviour: one `default` tenant; anonymous readers and subscribers; the publish token
 * (`Authorization: Bearer`, or `?token=` on `/ws` where browsers cannot set headers) grants
 * publishing. A WebSocket that presents a wrong token is refused rather than downgraded.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PublishTokenAuth } from "./auth.ts";
 * import { SecretToken } from "./token.ts";
 * const auth = new PublishTokenAuth(new SecretToken("s3cret-token"));
 * const post = (token: string) =>
 *   new Request("http://hub/events", { method: "POST", headers: { authorization: `Bearer ${token}` } });
 * const ok = await auth.authenticate(post("s3cret-token"), "publish");
 * assert.ok(ok.ok && ok.principal.may.publish && ok.principal.tenant === "default");
 * const refused = await auth.authenticate(post("wrong"), "publish");
 * assert.ok(!refused.ok && refused.refusal.code === "unauthorized");
 * ```
 */
export class PublishTokenAuth implements Authenticator {
  readonly #token: SecretToken;
  readonly #agentKeys: AgentKeys | null;

  /** `agentKeys`: how agent keys are checked; without it every agent is refused. */
  constructor(token: SecretToken, agentKeys: AgentKeys | null = null) {
    this.#token = token;
    this.#agentKeys = agentKeys;
  }

  authenticate(request: Request, access: Access): Promise<Authentication> {
    if (access === "agent") return authenticateAgent(request, this.#agentKeys);
    return Promise.resolve(this.#decide(request, access));
  }

  #decide(request: Request, access: Exclude<Access, "agent">): Authentication {
    switch (access) {
      case "read":
        return { ok: true, principal: ANONYMOUS };
      case "publish":
        if (this.#token.matches(bearerToken(request))) return { ok: true, principal: PUBLISHER };
        return {
          ok: false,
          refusal: {
            code: "unauthorized",
            message: "publishing needs Authorization: Bearer <publish token>",
            challenge: 'Bearer realm="herald"',
          },
        };
      case "control":
        if (this.#token.matches(bearerToken(request))) return { ok: true, principal: PUBLISHER };
        return {
          ok: false,
          refusal: {
            code: "unauthorized",
            message: "commanding agents needs Authorization: Bearer <publish token>",
            challenge: 'Bearer realm="herald"',
          },
        };
      case "connect": {
        const presented = bearerToken(request) ??
          bearerProtocol(request)?.slice(BEARER_PROTOCOL_PREFIX.length) ??
          new URL(request.url).searchParams.get("token");
        if (presented === null) return { ok: true, principal: ANONYMOUS };
        if (this.#token.matches(presented)) return { ok: true, principal: PUBLISHER };
        return {
          ok: false,
          refusal: { code: "unauthorized", message: "the token presented is not valid" },
        };
      }
    }
  }
}

// -- Agent credentials (issue 11) ---------------------------------------------------------
// `X-Agent-API-Key` is either the hub-wide agent key (HERALD_AGENT_KEY; any agent id) or a key
// issued to one agent on registration (bound to that agent id; derived from the hub-wide key).

/** How agent keys are checked (built by the composition root; see `agents/keys.ts`). */
export interface AgentKeys {
  /** The hub-wide agent key. */
  readonly shared: SecretToken;
  /** The agent an issued key belongs to when `key` is valid, else null. */
  issued(key: string): Promise<{ tenant: string; agentId: string } | null>;
}

/** The header StreamSpace agents send their key in. */
export const AGENT_KEY_HEADER = "x-agent-api-key";

const AGENT_REFUSAL: Refusal = {
  code: "unauthorized",
  message: "agents need a valid X-Agent-API-Key",
};

/** An agent principal: subject `agent` (shared key) or `agent:<id>` (a key bound to `id`). */
function agentPrincipal(tenant: string, agentId: string | null): Principal {
  return {
    tenant,
    subject: subjectOf(agentId),
    may: { ...ANONYMOUS.may, subscribe: [], agent: true },
    expiresAt: null,
    credential: subjectOf(agentId),
  };
}

function subjectOf(agentId: string | null): string {
  return agentId === null ? "agent" : `agent:${agentId}`;
}

async function authenticateAgent(
  request: Request,
  keys: AgentKeys | null,
): Promise<Authentication> {
  const key = request.headers.get(AGENT_KEY_HEADER)?.trim() ?? "";
  if (keys === null || key === "") return { ok: false, refusal: AGENT_REFUSAL };
  if (keys.shared.matches(key)) {
    return { ok: true, principal: agentPrincipal(DEFAULT_TENANT, null) };
  }
  const issued = await keys.issued(key);
  if (issued === null) return { ok: false, refusal: AGENT_REFUSAL };
  return { ok: true, principal: agentPrincipal(issued.tenant, issued.agentId) };
}

/** Checks one presented credential: its principal, or the refusal message. */
export type Verify = (token: string) => Promise<Principal | string> | Principal | string;

const CHALLENGE = 'Bearer realm="herald"';

/**
 * `token` and `jwt` modes: every request but `/health`, `/ready` and `/metrics` needs a
 * credential (`Authorization: Bearer`, the `bearer.<token>` subprotocol, `?token=`; for
 * agents `X-Agent-API-Key`). Publishing needs a `publish:` scope, agents the `agent` scope.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CredentialAuth } from "./auth.ts";
 * import { principal } from "../hub/principal.ts";
 * const auth = new CredentialAuth((token) =>
 *   token === "reader-token-0123456789" ? principal("acme", "dash", false) : "unknown token"
 * );
 * const read = (url: string) => auth.authenticate(new Request(url), "read");
 * const ok = await read("http://hub/state?token=reader-token-0123456789");
 * assert.ok(ok.ok && ok.principal.tenant === "acme");
 * const anonymous = await read("http://hub/state");
 * assert.ok(!anonymous.ok && anonymous.refusal.code === "unauthorized");
 * const publish = await auth.authenticate(
 *   new Request("http://hub/events?token=reader-token-0123456789"), "publish");
 * assert.ok(!publish.ok && publish.refusal.code === "forbidden");
 * ```
 */
export class CredentialAuth implements Authenticator {
  readonly #verify: Verify;
  readonly #hooks: CredentialHooks;

  constructor(verify: Verify, hooks: CredentialHooks = {}) {
    this.#verify = verify;
    this.#hooks = hooks;
  }

  async authenticate(request: Request, access: Access): Promise<Authentication> {
    const presented = access === "agent" ? agentKey(request) : presentedToken(request);
    if (presented === null) {
      return refused(
        "unauthorized",
        access === "agent"
          ? "agents need X-Agent-API-Key: <token with scope agent>"
          : "this hub needs a credential: Authorization: Bearer <token>, ?token= or the WebSocket subprotocol bearer.<token>",
      );
    }
    if (presented.length > MAX_CREDENTIAL_LENGTH) {
      return refused("unauthorized", "the token presented is not valid");
    }
    const verified = await this.#verify(presented);
    if (typeof verified === "string") return refused("unauthorized", verified);
    if (access === "publish" && !verified.may.publish) {
      return refused("forbidden", "this credential has no publish: scope");
    }
    if (access === "agent" && !verified.may.agent) {
      return refused("forbidden", "this credential has no agent scope");
    }
    if (access === "control" && !verified.may.control && !verified.may.admin) {
      return refused("forbidden", "commanding agents needs scope control or admin");
    }
    return { ok: true, principal: verified };
  }

  close(): void {
    this.#hooks.close?.();
  }

  onCredentialsChange(listener: (reauthorize: Reauthorize) => void): void {
    this.#hooks.onChange?.(listener);
  }
}

/** What a {@linkcode CredentialAuth} does beyond verifying: its source's lifecycle. */
export interface CredentialHooks {
  /** Stops watching the source. */
  readonly close?: () => void;
  /** Registers the listener of credential changes (see `Authenticator.onCredentialsChange`). */
  readonly onChange?: (listener: (reauthorize: Reauthorize) => void) => void;
}

function refused(code: Refusal["code"], message: string): Authentication {
  return {
    ok: false,
    refusal: code === "unauthorized" ? { code, message, challenge: CHALLENGE } : { code, message },
  };
}

/**
 * The authenticator `HERALD_AUTH` names. `token` loads the tokens file (refusing to start when
 * it is bad) and watches it; `jwt` builds the verifier of the configured key.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createAuthenticator, PublishTokenAuth } from "./auth.ts";
 * import { loadConfig } from "./config.ts";
 * import { systemClock } from "../hub/clock.ts";
 * const auth = await createAuthenticator(loadConfig({}), "0123456789abcdef", systemClock);
 * assert.ok(auth instanceof PublishTokenAuth);
 * ```
 */
export async function createAuthenticator(
  config: Config,
  publishToken: string,
  clock: Clock,
  options: { fetch?: typeof fetch; metrics?: Metrics; agentKeys?: AgentKeys } = {},
): Promise<Authenticator> {
  switch (config.auth) {
    case "none":
      return new PublishTokenAuth(new SecretToken(publishToken), options.agentKeys ?? null);
    case "token": {
      const file = new TokensFile(
        config.tokensFile!,
        config.tokensFileMaxBytes,
        (ok) => options.metrics?.tokensFileReloads.incLabel(ok ? "ok" : "failed"),
      );
      if (!await file.reload()) {
        throw new Error(`HERALD_TOKENS_FILE ${config.tokensFile} is not usable (see the log)`);
      }
      file.watch();
      return new CredentialAuth(
        (token) => file.lookup(token) ?? "the token presented is not valid",
        { close: () => file.close(), onChange: (listener) => file.onChange(listener) },
      );
    }
    case "jwt": {
      // jose is loaded only when jwt mode is chosen, so the other modes never pay for it.
      const { JwtVerifier } = await import("./auth/jwt.ts");
      const verifier = await JwtVerifier.create(config, clock, options.fetch);
      return new CredentialAuth(async (token) => {
        const outcome = await verifier.verify(token);
        return outcome.ok ? outcome.principal : outcome.message;
      });
    }
  }
}
