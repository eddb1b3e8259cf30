/**
 * The routing core and its seams. Never imports the HTTP layer.
 * @module
 */

export * from "./bus/bus.ts";
export * from "./client.ts";
export * from "./clock.ts";
export * from "./history/history.ts";
export * from "./history/memory.ts";
export * from "./hub.ts";
export * from "./metrics.ts";
export * from "./overflow.ts";
export * from "./queue.ts";
export * from "./session.ts";
export * from "../state/state.ts";
export * from "./subscriptions.ts";
export * from "./transport.ts";
