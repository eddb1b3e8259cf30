/**
 * A hub for unit tests: memory bus and history, the manual clock, fake transports. No server,
 * no sockets, no timers.
 * @module
 */

import { parseTopic, type TopicPattern } from "../events/topic.ts";
import { FakeTransport } from "./_fake_transport.ts";
import type { Bus } from "./bus/bus.ts";
import { MemoryBus } from "./bus/memory.ts";
import type { Client, ClientLimits } from "./client.ts";
import { ManualClock } from "./clock.ts";
import { MemoryHistory } from "./history/memory.ts";
import { type EventConsumer, Hub, type HubOptions } from "./hub.ts";
import { Metrics } from "./metrics.ts";
import { principal } from "./principal.ts";

/** Client limits that never get in the way unless a test lowers them. */
export const LIMITS: ClientLimits = {
  bufferEvents: 100,
  highWaterBytes: 1 << 20,
  overflow: "disconnect",
  stallTimeoutMs: 10_000,
  drainPollMs: 25,
};

/** A started hub with test defaults, `overrides` on top. */
export async function testHub(
  overrides: Partial<HubOptions> & { consumers?: readonly EventConsumer[]; bus?: Bus } = {},
) {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const metrics = new Metrics();
  const hub = new Hub({
    limits: LIMITS,
    maxSubscriptions: 10,
    idempotencyTtlMs: 60_000,
    idempotencyMaxKeys: 100,
    clock,
    metrics,
    bus: new MemoryBus("node-1"),
    history: new MemoryHistory({ maxEvents: 100, ttlMs: 60_000, maxBytes: 1 << 20 }, clock, "ep"),
    replayLimit: 100,
    reorderWaitMs: 250,
    reorderMaxPending: 100,
    consumers: [],
    quietMax: 100,
    ...overrides,
  });
  await hub.start();
  /** Connects a client on a fake transport that keeps up. */
  const connect = (
    tenant = "t",
    canPublish = false,
  ): { client: Client; transport: FakeTransport } => {
    const transport = new FakeTransport(true);
    const client = hub.connect(transport, principal(tenant, "test", canPublish), "test");
    return { client, transport };
  };
  return { hub, clock, metrics, connect };
}

/** A topic pattern from its text. */
export function topic(text: string): TopicPattern {
  return parseTopic(text)!;
}
