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
