/**
 * Builds the bus `HERALD_BUS` names. The Redis client is loaded only when the redis bus is
 * chosen, so single-process hubs never pay for it.
 * @module
 */

import { type Bus, MemoryBus } from "./bus.ts";
import { BroadcastBus } from "./broadcast.ts";
import type { Config } from "../../server/config.ts";

/** The bus settings of a config. */
export type BusConfig = Pick<
  Config,
  | "bus"
  | "redisUrl"
  | "redisPrefix"
  | "busBatchMax"
  | "busPublishTimeoutMs"
  | "redisReconnectMinMs"
  | "redisReconnectMaxMs"
  | "redisStreamMaxLen"
  | "idempotencyTtlMs"
>;

/**
 * Creates the configured bus for node `node` (not started: the hub starts it).
 *
 * @example
 * ```ts
 * import { createBus } from "./create.ts";
 * import { loadConfig } from "../../server/config.ts";
 * const bus = await createBus(loadConfig({}), crypto.randomUUID());
 * ```
 */
export async function createBus(config: BusConfig, node: string): Promise<Bus> {
  switch (config.bus) {
    case "memory":
      return new MemoryBus();
    case "broadcast":
      return new BroadcastBus({ node, maxBatch: config.busBatchMax });
    case "redis": {
      const { RedisBus } = await import("./redis.ts");
      return new RedisBus({
        node,
        url: config.redisUrl,
        prefix: config.redisPrefix,
        maxBatch: config.busBatchMax,
        publishTimeoutMs: config.busPublishTimeoutMs,
        reconnectMinMs: config.redisReconnectMinMs,
        reconnectMaxMs: config.redisReconnectMaxMs,
        streamMaxLen: config.redisStreamMaxLen,
        idempotencyTtlMs: config.idempotencyTtlMs,
      });
    }
  }
}
