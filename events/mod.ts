/**
 * Herald's wire protocol as plain data: envelopes, topics, control messages, code tables and
 * the event catalog. No I/O; safe to import from clients.
 * @module
 */

export * from "./catalog.ts";
export * from "./codes.ts";
export * from "./dialects.ts";
export * from "./envelope.ts";
export * from "./json.ts";
export * from "./messages.ts";
export * from "./topic.ts";
