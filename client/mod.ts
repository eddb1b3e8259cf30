/**
 * Herald's TypeScript client for browsers, Deno and Node 22+: {@linkcode connect} to a hub,
 * `subscribe` to topics with resume and snapshot-then-follow built in, `publish`, `request`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { connect, IDLE_TOPIC } from "./mod.ts";
 * const client = connect("http://127.0.0.1:9", { backoff: { minMs: 10, maxMs: 10 } });
 * const deploys = client.subscribe("deploy.*", { appId: "mail-agent", snapshot: true });
 * assert.equal(deploys.topic, "deploy.*");
 * assert.equal(IDLE_TOPIC, "herald.idle");
 * await client.close();
 * ```
 * @module
 */

export * from "./backoff.ts";
export * from "./buffer.ts";
export * from "./client.ts";
export * from "./events.ts";
