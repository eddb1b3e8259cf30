/**
 * Small JSON type guards shared by the protocol decoders.
 * @module
 */

/** Any value `JSON.parse` can produce. */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };

/** A JSON object. */
export type JsonObject = { [key: string]: JsonValue };

/**
 * True for a plain JSON object (not an array, not null).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isJsonObject } from "./json.ts";
 * assert.deepEqual([{}, [], null, "x"].map(isJsonObject), [true, false, false, false]);
 * ```
 */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Outcome of decoding untrusted input: a value or a human-readable reason. */
export type Decoded<T> = { ok: true; value: T } | { ok: false; message: string };

/**
 * Builds a failed {@linkcode Decoded}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { invalid } from "./json.ts";
 * assert.deepEqual(invalid("payload must be an object"), {
 *   ok: false,
 *   message: "payload must be an object",
 * });
 * ```
 */
export function invalid(message: string): { ok: false; message: string } {
  return { ok: false, message };
}

/**
 * Why a parsed JSON value cannot be stored and sent back unchanged, or null when it can: it
 * nests objects and arrays deeper than `maxDepth` (the value itself is level 1), or holds a
 * number JSON cannot carry (`1e400` parses to Infinity, which would be sent back as `null`).
 * Walks iteratively, so a value of any depth is checked without deep recursion.
 */
export function jsonValueProblem(value: unknown, maxDepth: number): string | null {
  const stack: [unknown, number][] = [[value, 1]];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const [current, depth] = item;
    if (typeof current === "number") {
      if (!Number.isFinite(current)) return "numbers must be finite (1e400 is out of range)";
      continue;
    }
    if (typeof current !== "object" || current === null) continue;
    if (depth > maxDepth) return `objects and arrays may nest at most ${maxDepth} levels deep`;
    for (const child of Array.isArray(current) ? current : Object.values(current)) {
      if ((typeof child === "object" && child !== null) || typeof child === "number") {
        stack.push([child, depth + 1]);
      }
    }
  }
  return null;
}

/** Longest piece of client input quoted back in an error message. */
const MAX_QUOTED = 64;

/**
 * `value` quoted for an error message, cut to 64 characters, so a reply never echoes a large
 * piece of its input. Non-strings are described by their JSON type.
 */
export function quoted(value: unknown): string {
  if (typeof value !== "string") {
    return value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value}`;
  }
  return JSON.stringify(value.length > MAX_QUOTED ? `${value.slice(0, MAX_QUOTED)}…` : value);
}
