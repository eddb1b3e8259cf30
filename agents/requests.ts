/**
 * The agents' WebSocket `request` topics: `agents` (every agent, or one with `agentId`) for any
 * connection, and `agents.command` (`{agentId, action, payload}`, or `broadcast: true` with an
 * optional `exclude`) for connections with the `control` grant.
 * @module
 */

import { ERROR_CODES } from "../events/codes.ts";
import type { JsonObject } from "../events/json.ts";
import { RequestError } from "../hub/errors.ts";
import type { RequestHandler } from "../hub/session.ts";
import { type AgentRegistry, checkAgentId, mayControl } from "./registry.ts";

/**
 * The request topics, by name, answered by `registry`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { agentRequests } from "./requests.ts";
 * import type { AgentRegistry } from "./registry.ts";
 * const topics = agentRequests({} as AgentRegistry);
 * assert.deepEqual([...topics.keys()], ["agents", "agents.command"]);
 * ```
 */
export function agentRequests(registry: AgentRegistry): Map<string, RequestHandler> {
  const agents: RequestHandler = async (client, payload) => {
    const tenant = client.principal.tenant;
    if (payload.agentId === undefined) return { agents: await registry.list(tenant) };
    return { agent: await registry.view(tenant, checkAgentId(payload.agentId)) };
  };
  const command: RequestHandler = async (client, payload) => {
    const principal = client.principal;
    if (!mayControl(principal)) {
      throw new RequestError(ERROR_CODES.forbidden, "commanding agents needs the control grant");
    }
    if (payload.broadcast === true) {
      return await registry.broadcast(principal, payload as JsonObject);
    }
    const agentId = checkAgentId(payload.agentId);
    const sent = await registry.command(principal, agentId, payload as JsonObject);
    return { commandId: sent.commandId, status: sent.status };
  };
  return new Map([["agents", agents], ["agents.command", command]]);
}
