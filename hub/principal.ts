/**
 * Who a connection or a request acts as. The auth seam (`server/auth.ts`) is the only place that
 * builds one from credentials; the hub reads it and never looks at a token.
 * @module
 */

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
