/**
 * Scopes, the same strings in a tokens file and a JWT's `scope` claim, turned into the grants of
 * a principal: `subscribe:<pattern>`, `publish:<pattern>`, `agent`, `control`, `admin`,
 * `tenants:*`.
 * @module
 */

import { parseTopic } from "../../events/topic.ts";
import type { Grants } from "../../hub/principal.ts";

export { isTenantName } from "../../hub/principal.ts";

/**
 * Reads scopes into grants. `strict` (a tokens file) refuses an unknown scope or a bad pattern
 * with a message; otherwise (a JWT, whose issuer may add scopes of other services) they are
 * ignored.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { grantsOf } from "./scopes.ts";
 * const grants = grantsOf(["subscribe:deploy.*", "publish:deploy.step", "agent"], true);
 * assert.ok(typeof grants !== "string");
 * assert.deepEqual(grants.subscribe, ["deploy.*"]);
 * assert.equal(grants.publish && grants.agent && !grants.admin, true);
 * assert.equal(typeof grantsOf(["subscribe:Bad"], true), "string");
 * assert.equal(typeof grantsOf(["openid"], false), "object");
 * ```
 */
export function grantsOf(scopes: readonly string[], strict: boolean): Grants | string {
  const subscribe = new Set<string>();
  const publishTopics = new Set<string>();
  const flags = { agent: false, control: false, admin: false, tenants: false };
  for (const scope of scopes) {
    const colon = scope.indexOf(":");
    const kind = colon === -1 ? scope : scope.slice(0, colon);
    const pattern = colon === -1 ? null : scope.slice(colon + 1);
    if ((kind === "subscribe" || kind === "publish") && pattern !== null) {
      if (parseTopic(pattern) === null) {
        if (strict) return `scope ${JSON.stringify(scope)} does not name a topic pattern`;
        continue;
      }
      (kind === "subscribe" ? subscribe : publishTopics).add(pattern);
    } else if (scope === "agent" || scope === "control" || scope === "admin") {
      flags[scope] = true;
    } else if (scope === "tenants:*") {
      flags.tenants = true;
    } else if (strict) {
      return `unknown scope ${
        JSON.stringify(scope.slice(0, 80))
      } (known: subscribe:<pattern>, publish:<pattern>, agent, control, admin, tenants:*)`;
    }
  }
  return {
    subscribe: [...subscribe],
    publish: publishTopics.size > 0,
    publishTopics: [...publishTopics],
    ...flags,
  };
}
