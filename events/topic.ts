/**
 * Topic patterns clients subscribe with: `*` (everything), `deploy.*` (a prefix, any depth),
 * or an exact event type.
 * @module
 */

import { isEventType } from "./envelope.ts";

/** A parsed topic pattern. `prefix` ends with a dot (`"deploy."`), or is `""` for `*`. */
export type TopicPattern =
  | { readonly kind: "exact"; readonly topic: string; readonly type: string }
  | { readonly kind: "prefix"; readonly topic: string; readonly prefix: string };

const PREFIX_PATTERN = /^[a-z][a-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*\.\*$/;

/**
 * Parses a topic pattern; null when it is not one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTopic } from "./topic.ts";
 * assert.deepEqual(parseTopic("deploy.*"), { kind: "prefix", topic: "deploy.*", prefix: "deploy." });
 * assert.equal(parseTopic("deploy."), null);
 * ```
 */
export function parseTopic(topic: string): TopicPattern | null {
  if (topic === "*") return { kind: "prefix", topic, prefix: "" };
  if (topic.length <= 130 && PREFIX_PATTERN.test(topic)) {
    return { kind: "prefix", topic, prefix: topic.slice(0, -1) };
  }
  if (isEventType(topic)) return { kind: "exact", topic, type: topic };
  return null;
}

/**
 * The prefixes an event type matches, shortest first: `a.b.c` -> `""`, `"a."`, `"a.b."`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { prefixesOf } from "./topic.ts";
 * assert.deepEqual(prefixesOf("a.b.c"), ["", "a.", "a.b."]);
 * ```
 */
export function prefixesOf(type: string): string[] {
  const prefixes = [""];
  let dot = type.indexOf(".");
  while (dot !== -1) {
    prefixes.push(type.slice(0, dot + 1));
    dot = type.indexOf(".", dot + 1);
  }
  return prefixes;
}

/**
 * True when `pattern` matches an event of `type`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTopic, topicMatches } from "./topic.ts";
 * assert.equal(topicMatches(parseTopic("deploy.*")!, "deploy.step"), true);
 * assert.equal(topicMatches(parseTopic("deploy.step")!, "deploy.failed"), false);
 * ```
 */
export function topicMatches(pattern: TopicPattern, type: string): boolean {
  return pattern.kind === "exact"
    ? pattern.type === type
    : type.startsWith(pattern.prefix) && type.length > pattern.prefix.length;
}
