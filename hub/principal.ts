/**
 * Who a connection or a request acts as. The auth seam (`server/auth.ts`) is the only place that
 * builds one from credentials; the hub reads it and never looks at a token.
 * @module
 */

import type { SubscriptionFilter } from "../events/messages.ts";
import { parseTopic, topicMatches, type TopicPattern } from "../events/topic.ts";

/** What a principal may do. */
export interface Grants {
  /** Topic patterns it may subscribe to (`*` for everything). */
  readonly subscribe: readonly string[];
  /** May publish events (holds at least one publish pattern). */
  readonly publish: boolean;
  /** Event types it may publish, as topic patterns (`*` for any). */
  readonly publishTopics: readonly string[];
  /** May act as an agent (answer commands). */
  readonly agent: boolean;
  /** May command agents and read other users' data within its tenant. */
  readonly control: boolean;
  /** May administer the hub. */
  readonly admin: boolean;
  /** May name the tenant of each event it publishes (scope `tenants:*`). */
  readonly tenants: boolean;
}

/** An authenticated identity: its tenant, who it is, and what it may do. */
export interface Principal {
  /** Every connection, event, index and idempotency key belongs to one tenant. */
  readonly tenant: string;
  /** Who it is inside the tenant (`anonymous` when nobody presented a credential). */
  readonly subject: string;
  readonly may: Grants;
  /** When its credential expires (ms since the epoch), or null when it does not. */
  readonly expiresAt?: number | null;
  /**
   * What limits per credential count against: never the secret itself (`token:acme/ci`,
   * `jwt:acme/alice`, `publish-token`, `anonymous`).
   */
  readonly credential?: string;
}

/**
 * How a principal stands after the credentials changed (a tokens file reload): the principal its
 * credential stands for now (the same object when the change did not touch it), or null when the
 * credential was revoked. The auth seam builds it; the hub and the agent registry apply it to
 * their live connections.
 */
export type Reauthorize = (who: Principal) => Principal | null;

/** The tenant of every principal until tenants have their own credentials. */
export const DEFAULT_TENANT = "default";

/**
 * A principal in `tenant` that may subscribe to everything, and publish anything when `publish`
 * is true.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { principal } from "./principal.ts";
 * const reader = principal("default", "anonymous", false);
 * assert.equal(reader.may.publish, false);
 * assert.deepEqual(reader.may.subscribe, ["*"]);
 * ```
 */
export function principal(tenant: string, subject: string, publish: boolean): Principal {
  return {
    tenant,
    subject,
    may: {
      subscribe: ["*"],
      publish,
      publishTopics: publish ? ["*"] : [],
      agent: false,
      control: false,
      admin: false,
      tenants: false,
    },
    expiresAt: null,
    credential: publish ? "publish-token" : "anonymous",
  };
}

/**
 * The filter a subscription of `who` runs with, or null when it may not have it (StreamSpace's
 * user and session notifications). A user watches their own id (`subject`); a credential that may
 * subscribe to every topic (`*`, as every credential in `none` mode may), holds `control` or administers
 * may watch any user of its tenant. A narrower credential's session filter is narrowed to its
 * own user, so it cannot read another user's session by its id.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { principal, userScoped } from "./principal.ts";
 * const may = { ...principal("acme", "user1", false).may, subscribe: ["session.*"] };
 * const user1 = { ...principal("acme", "user1", false), may };
 * assert.deepEqual(userScoped(user1, { userId: "user1" }), { userId: "user1" });
 * assert.equal(userScoped(user1, { userId: "user2" }), null);
 * assert.deepEqual(userScoped(user1, { sessionId: "s1" }), { sessionId: "s1", userId: "user1" });
 * const reader = principal("acme", "anonymous", false);
 * assert.deepEqual(userScoped(reader, { userId: "user2" }), { userId: "user2" });
 * ```
 */
export function userScoped(who: Principal, filter: SubscriptionFilter): SubscriptionFilter | null {
  // `control` reads other users' data within its tenant (issue 10's scopes).
  const anyUser = who.may.admin || who.may.control || who.may.subscribe.includes("*");
  if (anyUser) return filter;
  if (filter.userId !== undefined) return filter.userId === who.subject ? filter : null;
  if (filter.sessionId !== undefined) return { ...filter, userId: who.subject };
  return filter;
}

/**
 * True when every event `requested` matches is one some pattern of `granted` matches:
 * `deploy.*` lies within `*` and `deploy.*`; `deploy.step` within `deploy.*`; `*` only within `*`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { patternWithin } from "./principal.ts";
 * import { parseTopic } from "../events/topic.ts";
 * assert.equal(patternWithin(parseTopic("deploy.step")!, ["deploy.*"]), true);
 * assert.equal(patternWithin(parseTopic("deploy.*")!, ["deploy.step"]), false);
 * assert.equal(patternWithin(parseTopic("*")!, ["deploy.*"]), false);
 * ```
 */
export function patternWithin(requested: TopicPattern, granted: readonly string[]): boolean {
  for (const raw of granted) {
    const grant = parseTopic(raw);
    if (grant === null) continue;
    if (grant.kind === "exact") {
      if (requested.kind === "exact" && requested.type === grant.type) return true;
    } else if (requested.kind === "exact") {
      if (topicMatches(grant, requested.type)) return true;
    } else if (requested.prefix.startsWith(grant.prefix)) {
      return true;
    }
  }
  return false;
}

/**
 * True when `who` may hold a subscription to `topic` with the user and session filters
 * `filter` as they are: the topic lies within its subscribe scopes and {@linkcode userScoped}
 * leaves the filter unchanged. A credential reload keeps a connection only when this holds for
 * every subscription it has.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mayHold, principal } from "./principal.ts";
 * import { parseTopic } from "../events/topic.ts";
 * const deployOnly = { ...principal("acme", "ci", false).may, subscribe: ["deploy.*"] };
 * const ci = { ...principal("acme", "ci", false), may: deployOnly };
 * assert.equal(mayHold(ci, parseTopic("deploy.step")!, {}), true);
 * assert.equal(mayHold(ci, parseTopic("*")!, {}), false);
 * assert.equal(mayHold(ci, parseTopic("deploy.*")!, { sessionId: "s1" }), false);
 * ```
 */
export function mayHold(
  who: Principal,
  topic: TopicPattern,
  filter: Pick<SubscriptionFilter, "userId" | "sessionId">,
): boolean {
  if (!patternWithin(topic, who.may.subscribe)) return false;
  const scoped = userScoped(who, filter);
  return scoped !== null && scoped.userId === filter.userId;
}

/**
 * True when the principal may publish an event of `type`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mayPublishType, principal } from "./principal.ts";
 * assert.equal(mayPublishType(principal("t", "ci", true), "deploy.step"), true);
 * assert.equal(mayPublishType(principal("t", "page", false), "deploy.step"), false);
 * ```
 */
export function mayPublishType(who: Principal, type: string): boolean {
  return who.may.publishTopics.some((raw) => {
    const grant = parseTopic(raw);
    return grant !== null && topicMatches(grant, type);
  });
}

/**
 * True when the principal may read everything of its tenant (live state, history, the REST
 * reads): it subscribes to `*`, or holds `control` or `admin`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { principal, readsAll } from "./principal.ts";
 * assert.equal(readsAll(principal("t", "anonymous", false)), true);
 * ```
 */
export function readsAll(who: Principal): boolean {
  return who.may.control || who.may.admin || who.may.subscribe.includes("*");
}

/** Tenant names: what a Redis key, a log line and a URL carry safely. */
const TENANT = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/**
 * True when `name` is a valid tenant name (1-64 letters, digits, `_`, `.`, `-`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isTenantName } from "./principal.ts";
 * assert.equal(isTenantName("acme"), true);
 * assert.equal(isTenantName("a:b"), false);
 * ```
 */
export function isTenantName(name: unknown): name is string {
  return typeof name === "string" && TENANT.test(name);
}
