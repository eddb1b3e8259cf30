/**
 * The auth seam: the one place that reads credentials and decides a request's tenant and what
 * it may do. Every entry point (`/ws`, `/events/stream`, `POST /events` and the REST reads)
 * calls {@linkcode Authenticator.authenticate} and works with the {@linkcode Principal} it gets,
 * or answers the {@linkcode Refusal}.
 *
 * Contract: `authenticate` never throws for bad credentials (it refuses); a refusal carries the
 * HTTP error code and message to answer with. It may be asynchronous (a token file, a JWT key
 * fetched once). Its first implementation is {@linkcode PublishTokenAuth}.
 * @module
 */

import { DEFAULT_TENANT, type Principal, principal } from "../hub/principal.ts";
import { bearerToken, type SecretToken } from "./token.ts";

export { DEFAULT_TENANT, type Principal };

/** What a request wants to do, which decides which credentials count. */
export type Access =
  /** Open a WebSocket: reads, and publishing when the connection presents a publish credential. */
  | "connect"
  /** `POST /events`. */
  | "publish"
  /** `/events/stream` and the REST reads. */
  | "read"
  /** An agent registering or connecting: reads `X-Agent-API-Key`. */
  | "agent"
  /** Commanding and approving agents (`POST /agents/...`): needs the `control` grant (admin). */
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
}

const ANONYMOUS = principal(DEFAULT_TENANT, "anonymous", false);
// In this mode the publish token is the operator's only credential, so it also carries the
// `control` grant (commanding and approving agents; see docs/security.md).
const PUBLISHES = principal(DEFAULT_TENANT, "publisher", true);
const PUBLISHER: Principal = { ...PUBLISHES, may: { ...PUBLISHES.may, admin: true } };

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
        const presented = bearerToken(request) ?? new URL(request.url).searchParams.get("token");
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
    subject: agentId === null ? "agent" : `agent:${agentId}`,
    may: { subscribe: [], publish: false, agent: true, admin: false },
  };
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
