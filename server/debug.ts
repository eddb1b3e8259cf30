/**
 * Test-only request topics, enabled by `HERALD_DEBUG_HOOKS=1` and never in production: they
 * let the multi-isolate tests see which isolate a connection landed on and make one isolate
 * fall behind on the bus for real.
 * @module
 */

import type { RequestHandler } from "../hub/session.ts";

/** Longest stall `debug.stallOnBusMessage` accepts. */
const MAX_STALL_MS = 10_000;

/** Blocks this isolate's event loop for `ms` (nothing else runs meanwhile). */
function blockFor(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // Busy on purpose.
  }
}

/**
 * The debug request topics:
 * - `debug.node` answers `{ node }`, the id this isolate's bus uses as its origin.
 * - `debug.stallOnBusMessage` `{ ms }` blocks this isolate for `ms` when the next broadcast bus
 *   message reaches it, so the messages sent meanwhile pile up past Deno's 256-message
 *   `BroadcastChannel` buffer and some are dropped, as in a real overload.
 * - `debug.heap` collects garbage (when the process runs with `--v8-flags=--expose-gc`) and
 *   answers `{ heapUsed, collected }`: what the process keeps, for the leak tests.
 */
export function debugRequests(
  node: string,
  busChannel = "herald-bus",
): Map<string, RequestHandler> {
  return new Map<string, RequestHandler>([
    ["debug.node", () => ({ node })],
    ["debug.heap", () => {
      const gc = (globalThis as { gc?: () => void }).gc;
      gc?.();
      return { heapUsed: Deno.memoryUsage().heapUsed, collected: gc !== undefined };
    }],
    ["debug.stallOnBusMessage", (_client, payload) => {
      const ms = Number(payload.ms);
      if (!Number.isInteger(ms) || ms < 1 || ms > MAX_STALL_MS) {
        return { error: `ms must be a whole number from 1 to ${MAX_STALL_MS}` };
      }
      const listener = new BroadcastChannel(busChannel);
      listener.onmessage = () => {
        listener.close();
        blockFor(ms);
      };
      return { armed: true, node, ms };
    }],
  ]);
}
