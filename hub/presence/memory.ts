/**
 * Presence of one process. Limits: it knows this node's connections only, so it fits the
 * `memory` bus; its entries die with the process (the liveness window is the process).
 * @module
 */

import { byAge, type Presence, type PresenceEntry } from "./presence.ts";

/**
 * In-process {@linkcode Presence}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryPresence } from "./memory.ts";
 * const presence = new MemoryPresence();
 * const entry = { tenant: "t", connection: "c1", node: "n1", subject: "agent-7", transport: "websocket", since: 0 };
 * await presence.join(entry);
 * assert.deepEqual(await presence.find("t", "c1"), entry);
 * assert.deepEqual(await presence.list("other"), []);
 * await presence.leave("t", "c1");
 * assert.equal(await presence.find("t", "c1"), null);
 * ```
 */
export class MemoryPresence implements Presence {
  readonly kind = "memory";
  readonly #tenants = new Map<string, Map<string, PresenceEntry>>();

  start(): Promise<void> {
    return Promise.resolve();
  }

  join(entry: PresenceEntry): Promise<void> {
    let connections = this.#tenants.get(entry.tenant);
    if (connections === undefined) {
      connections = new Map();
      this.#tenants.set(entry.tenant, connections);
    }
    connections.set(entry.connection, entry);
    return Promise.resolve();
  }

  leave(tenant: string, connection: string): Promise<void> {
    const connections = this.#tenants.get(tenant);
    connections?.delete(connection);
    if (connections?.size === 0) this.#tenants.delete(tenant);
    return Promise.resolve();
  }

  list(tenant: string): Promise<PresenceEntry[]> {
    return Promise.resolve([...(this.#tenants.get(tenant)?.values() ?? [])].sort(byAge));
  }

  find(tenant: string, connection: string): Promise<PresenceEntry | null> {
    return Promise.resolve(this.#tenants.get(tenant)?.get(connection) ?? null);
  }

  /** Every node: one process, and a node that dies takes this presence with it. */
  liveNodes(nodes: readonly string[]): Promise<Set<string>> {
    return Promise.resolve(new Set(nodes));
  }

  close(): Promise<void> {
    this.#tenants.clear();
    return Promise.resolve();
  }
}
