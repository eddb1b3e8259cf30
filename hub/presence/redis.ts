/**
 * Presence shared by every node through Redis.
 *
 * Keys: `<prefix>:presence:<tenant length>:<tenant>` is a hash from connection id to its entry
 * (JSON); `<prefix>:presence:alive:<node>` exists while the node lives: the node sets it with a
 * TTL of `ttlMs` and renews it every `ttlMs / 3`. An answer leaves out the entries of nodes
 * whose key is gone and deletes them from the hash; so a node that died without closing drops
 * out of every answer at most `ttlMs` after its last renewal. A node that closes deletes its
 * own entries and its key.
 * @module
 */

import { createClient } from "redis";
import { getLogger } from "@logtape/logtape";
import type { Clock } from "../clock.ts";
import { byAge, type Presence, type PresenceEntry } from "./presence.ts";

type Client = ReturnType<typeof createClient>;

const log = getLogger(["herald", "presence"]);

/** Options of {@linkcode RedisPresence}. */
export interface RedisPresenceOptions {
  /** This node's id. */
  readonly node: string;
  readonly url: string;
  /** Prefix of every key. */
  readonly prefix: string;
  /** How long a node counts as alive after its last renewal. */
  readonly ttlMs: number;
  readonly clock: Clock;
}

/** Redis-backed {@linkcode Presence}. */
export class RedisPresence implements Presence {
  readonly kind = "redis";
  readonly #options: RedisPresenceOptions;
  readonly #client: Client;
  /** This node's connections by tenant, to remove them on close. */
  readonly #own = new Map<string, Set<string>>();
  #stopped = false;

  constructor(options: RedisPresenceOptions) {
    this.#options = options;
    this.#client = createClient({ url: options.url, disableOfflineQueue: true });
    this.#client.on("error", (error: Error) => {
      if (!this.#stopped) log.warn("Redis presence unreachable: {error}", { error: error.message });
    });
  }

  #tenantKey(tenant: string): string {
    return `${this.#options.prefix}:presence:${tenant.length}:${tenant}`;
  }

  #aliveKey(node: string): string {
    return `${this.#options.prefix}:presence:alive:${node}`;
  }

  /** Connects, marks this node alive and keeps renewing it. */
  async start(): Promise<void> {
    await this.#client.connect();
    await this.#renew();
    void this.#renewLoop();
  }

  async #renew(): Promise<void> {
    await this.#client.set(this.#aliveKey(this.#options.node), "1", {
      expiration: { type: "PX", value: this.#options.ttlMs },
    });
  }

  async #renewLoop(): Promise<void> {
    while (!this.#stopped) {
      await this.#options.clock.sleep(this.#options.ttlMs / 3);
      if (this.#stopped) return;
      try {
        await this.#renew();
      } catch {
        // Unreachable for now: the next turn tries again; past ttlMs this node drops out.
      }
    }
  }

  async join(entry: PresenceEntry): Promise<void> {
    let own = this.#own.get(entry.tenant);
    if (own === undefined) {
      own = new Set();
      this.#own.set(entry.tenant, own);
    }
    own.add(entry.connection);
    await this.#client.hSet(this.#tenantKey(entry.tenant), entry.connection, JSON.stringify(entry));
  }

  async leave(tenant: string, connection: string): Promise<void> {
    this.#own.get(tenant)?.delete(connection);
    await this.#client.hDel(this.#tenantKey(tenant), connection);
  }

  async list(tenant: string): Promise<PresenceEntry[]> {
    const raw = await this.#client.hGetAll(this.#tenantKey(tenant));
    const entries = Object.values(raw).map((text) => JSON.parse(text) as PresenceEntry);
    return (await this.#alive(tenant, entries)).sort(byAge);
  }

  async find(tenant: string, connection: string): Promise<PresenceEntry | null> {
    const text = await this.#client.hGet(this.#tenantKey(tenant), connection);
    if (text === null || text === undefined) return null;
    const [entry] = await this.#alive(tenant, [JSON.parse(text) as PresenceEntry]);
    return entry ?? null;
  }

  async liveNodes(nodes: readonly string[]): Promise<Set<string>> {
    if (nodes.length === 0) return new Set();
    const flags = await this.#client.mGet(nodes.map((node) => this.#aliveKey(node)));
    return new Set(nodes.filter((_, index) => flags[index] !== null));
  }

  /** The entries whose node is alive; deletes the others. */
  async #alive(tenant: string, entries: PresenceEntry[]): Promise<PresenceEntry[]> {
    const nodes = [...new Set(entries.map((entry) => entry.node))];
    if (nodes.length === 0) return [];
    const live = await this.liveNodes(nodes);
    const dead = new Set(nodes.filter((node) => !live.has(node)));
    if (dead.size === 0) return entries;
    const gone = entries.filter((entry) => dead.has(entry.node));
    await this.#client.hDel(this.#tenantKey(tenant), gone.map((entry) => entry.connection));
    return entries.filter((entry) => !dead.has(entry.node));
  }

  async close(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    try {
      for (const [tenant, connections] of this.#own) {
        if (connections.size > 0) {
          await this.#client.hDel(this.#tenantKey(tenant), [...connections]);
        }
      }
      await this.#client.del(this.#aliveKey(this.#options.node));
    } catch (error) {
      log.warn("Redis presence could not remove this node's entries: {error}", { error });
    }
    this.#client.destroy();
  }
}
