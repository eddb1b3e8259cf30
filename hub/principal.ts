/**
 * Who a connection or a request acts as. The auth seam (`server/auth.ts`) is the only place that
 * builds one from credentials; the hub reads it and never looks at a token.
 * @module
 */

import type { SubscriptionFilter } from "../events/messages.ts";

/** What a principal may do. */
export interface Grants {
  /** Topic patterns it may subscribe to (`*` for everything). */
  readonly subscribe: readonly string[];
  /** May publish events. */
  readonly publish: boolean;
  /** May act as an agent (answer commands). */
  readonly agent: boolean;
  /** May administer the hub. */
  readonly admin: boolean;
}

/** An authenticated identity: its tenant, who it is, and what it may do. */
export interface Principal {
  /** Every connection, event, index and idempotency key belongs to one tenant. */
  readonly tenant: string;
  /** Who it is inside the tenant (`anonymous` when nobody presented a credential). */
  readonly subject: string;
  readonly may: Grants;
}

/** The tenant of every principal until tenants have their own credentials. */
export const DEFAULT_TENANT = "default";

/**
 * A principal in `tenant` that may subscribe to everything, and publish when `publish` is true.
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
    may: { subscribe: ["*"], publish, agent: false, admin: false },
  };
}

/**
 * The filter a subscription of `who` runs with, or null when it may not have it (StreamSpace's
 * user and session notifications). A user watches their own id (`subject`); a credential that may
 * subscribe to every topic (`*`, as every credential may until identities land) or administer
 * may watch any user of its tenant. A narrower credential's session filter is narrowed to its
 * own user, so it cannot read another user's session by its id.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { principal, userScoped } from "./principal.ts";
 * const may = { subscribe: ["session.*"], publish: false, agent: false, admin: false };
 * const user1 = { ...principal("acme", "user1", false), may };
 * assert.deepEqual(userScoped(user1, { userId: "user1" }), { userId: "user1" });
 * assert.equal(userScoped(user1, { userId: "user2" }), null);
 * assert.deepEqual(userScoped(user1, { sessionId: "s1" }), { sessionId: "s1", userId: "user1" });
 * const reader = principal("acme", "anonymous", false);
 * assert.deepEqual(userScoped(reader, { userId: "user2" }), { userId: "user2" });
 * ```
 */
export function userScoped(who: Principal, filter: SubscriptionFilter): SubscriptionFilter | null {
  const anyUser = who.may.admin || who.may.subscribe.includes("*");
  if (anyUser) return filter;
  if (filter.userId !== undefined) return filter.userId === who.subject ? filter : null;
  if (filter.sessionId !== undefined) return { ...filter, userId: who.subject };
  return filter;
}
