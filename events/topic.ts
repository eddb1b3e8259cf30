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
 * Patterns parsed recently, shared by every subscription to the same topic: a connection that
 * subscribes to 100 topics holds 100 references instead of 100 objects and query-string copies.
 * Bounded (cleared when full) so that hostile topics cannot grow it.
 */
const parsed = new Map<string, TopicPattern>();
const PARSED_LIMIT = 4096;

/**
 * Parses a topic pattern; null when it is not one. The same topic gives the same (immutable)
 * object while it is remembered.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTopic } from "./topic.ts";
 * assert.deepEqual(parseTopic("deploy.*"), { kind: "prefix", topic: "deploy.*", prefix: "deploy." });
 * assert.equal(parseTopic("deploy."), null);
 * assert.equal(parseTopic("deploy.step"), parseTopic("deploy.step"));
 * ```
 */
export function parseTopic(topic: string): TopicPattern | null {
  const known = parsed.get(topic);
  if (known !== undefined) return known;
  const pattern = parseNew(topic);
  if (pattern === null) return null;
  if (parsed.size >= PARSED_LIMIT) parsed.clear();
  parsed.set(pattern.topic, pattern);
  return pattern;
}

function parseNew(topic: string): TopicPattern | null {
  if (topic === "*") return Object.freeze({ kind: "prefix", topic, prefix: "" });
  if (topic.length <= 130 && PREFIX_PATTERN.test(topic)) {
    return Object.freeze({ kind: "prefix", topic, prefix: topic.slice(0, -1) });
  }
  if (isEventType(topic)) return Object.freeze({ kind: "exact", topic, type: topic });
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
