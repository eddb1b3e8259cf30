/**
 * The single-process bus.
 * @module
 */

import type { HeraldEvent } from "../../events/envelope.ts";
import { type Bus, type BusReceiver, type EarlierAcceptances, NO_EARLIER } from "./bus.ts";

/**
 * The single-process bus: there are no other nodes, so publishing is a no-op.
 * Limits: one process only; use `broadcast` or `redis` for more.
 */
export class MemoryBus implements Bus {
  readonly kind = "memory";
  readonly ready = true;

  start(_receiver: BusReceiver): Promise<void> {
    return Promise.resolve();
  }

  publish(
    _events: readonly HeraldEvent[],
    _keyed: ReadonlySet<string>,
  ): Promise<EarlierAcceptances> {
    return Promise.resolve(NO_EARLIER);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
