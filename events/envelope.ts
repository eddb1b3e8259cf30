/**
 * The event envelope: what producers publish, what the hub stores and what clients receive.
 * @module
 */

import { checkPayload, isCatalogued } from "./catalog.ts";
import {
  type Decoded,
  invalid,
  isJsonObject,
  type JsonObject,
  jsonValueProblem,
  quoted,
} from "./json.ts";

/** Longest event type name accepted. */
export const MAX_TYPE_LENGTH = 128;
/** Longest `appId`, `namespace`, `userId`, `sessionId` or producer-supplied `id` accepted. */
export const MAX_NAME_LENGTH = 256;
/**
 * Default of `HERALD_MAX_EVENT_DEPTH`: how deep objects and arrays may nest in a payload (the
 * payload object is level 1). Deeper input is refused before it gets a cursor.
 */
export const DEFAULT_MAX_EVENT_DEPTH = 32;

/**
 * Dotted event type: lower-case first segment, at least two segments; later segments may be
 * camelCase (`cluster.nodeAdded`) and may contain digits, `_` and `-`.
 */
const TYPE_PATTERN = /^[a-z][a-z0-9_-]*(?:\.[A-Za-z0-9_-]+)+$/;

/** An event as a producer publishes it, after validation. */
export interface EventInput {
  readonly type: string;
  readonly appId?: string;
  readonly namespace?: string;
  /** The user the event concerns (StreamSpace session events); subscriptions may filter on it. */
  readonly userId?: string;
  /** The session the event concerns (StreamSpace); subscriptions may filter on it. */
  readonly sessionId?: string;
  readonly payload: JsonObject;
  /** Producer-supplied id; doubles as the idempotency key. */
  readonly id?: string;
  /** Producer-supplied time of the event (ISO 8601); the hub's clock otherwise. */
  readonly timestamp?: string;
}

/** An event the hub has accepted: it has an id, a cursor and a tenant. */
export interface HeraldEvent {
  readonly tenant: string;
  readonly type: string;
  readonly appId?: string;
  readonly namespace?: string;
  readonly userId?: string;
  readonly sessionId?: string;
  readonly payload: JsonObject;
  readonly id: string;
  /** Opaque cursor that orders events within a tenant. */
  readonly seq: string;
  readonly timestamp: string;
}

const INPUT_FIELDS = new Set([
  "type",
  "appId",
  "namespace",
  "userId",
  "sessionId",
  "payload",
  "id",
  "timestamp",
]);

/**
 * True when `type` is a well-formed event type name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isEventType } from "./envelope.ts";
 * assert.deepEqual(["deploy.step", "deploy", "Deploy.step", "deploy..step"].map(isEventType), [
 *   true,
 *   false,
 *   false,
 *   false,
 * ]);
 * ```
 */
export function isEventType(type: string): boolean {
  return type.length <= MAX_TYPE_LENGTH && TYPE_PATTERN.test(type);
}

function optionalName(
  value: unknown,
  field: string,
): Decoded<string | undefined> {
  if (value === undefined) return { ok: true, value: undefined };
  if (typeof value !== "string" || value.length === 0 || value.length > MAX_NAME_LENGTH) {
    return invalid(`${field} must be a non-empty string of at most ${MAX_NAME_LENGTH} characters`);
  }
  return { ok: true, value };
}

/** Options for {@linkcode decodeEventInput}. */
export interface DecodeEventOptions {
  /** Reject types outside the catalog (`HERALD_STRICT_EVENTS=1`). */
  readonly strict: boolean;
  /**
   * Deepest nesting of objects and arrays in a payload (`HERALD_MAX_EVENT_DEPTH`); defaults to
   * {@linkcode DEFAULT_MAX_EVENT_DEPTH}.
   */
  readonly maxDepth?: number;
}

/**
 * Validates one untrusted event object from a producer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeEventInput } from "./envelope.ts";
 * const decoded = decodeEventInput({ type: "deploy.queued", appId: "web" }, { strict: false });
 * assert.ok(decoded.ok && decoded.value.appId === "web");
 * assert.equal(decodeEventInput({ type: "Bad" }, { strict: false }).ok, false);
 * ```
 */
export function decodeEventInput(raw: unknown, options: DecodeEventOptions): Decoded<EventInput> {
  if (!isJsonObject(raw)) return invalid("an event must be a JSON object");
  for (const key of Object.keys(raw)) {
    if (!INPUT_FIELDS.has(key)) {
      return invalid(
        key === "seq"
          ? "seq is assigned by the hub and cannot be published"
          : `unknown field ${quoted(key)} (allowed: ${[...INPUT_FIELDS].join(", ")})`,
      );
    }
  }
  const { type, payload, timestamp } = raw;
  if (typeof type !== "string" || !isEventType(type)) {
    return invalid(
      `type must be a dotted name such as "deploy.step" (lower-case first segment, at least two segments, at most ${MAX_TYPE_LENGTH} characters)`,
    );
  }
  if (options.strict && !isCatalogued(type)) {
    return invalid(`type "${type}" is not in the event catalog (strict mode)`);
  }
  const appId = optionalName(raw.appId, "appId");
  if (!appId.ok) return appId;
  const namespace = optionalName(raw.namespace, "namespace");
  if (!namespace.ok) return namespace;
  const userId = optionalName(raw.userId, "userId");
  if (!userId.ok) return userId;
  const sessionId = optionalName(raw.sessionId, "sessionId");
  if (!sessionId.ok) return sessionId;
  const id = optionalName(raw.id, "id");
  if (!id.ok) return id;
  if (payload !== undefined && !isJsonObject(payload)) {
    return invalid("payload must be a JSON object when present");
  }
  const body: JsonObject = payload ?? {};
  const problem = jsonValueProblem(body, options.maxDepth ?? DEFAULT_MAX_EVENT_DEPTH);
  if (problem !== null) return invalid(`payload: ${problem}`);
  const payloadProblem = checkPayload(type, body);
  if (payloadProblem !== null) return invalid(payloadProblem);
  if (timestamp !== undefined && (typeof timestamp !== "string" || !isIsoTimestamp(timestamp))) {
    return invalid("timestamp must be an ISO 8601 date-time string when present");
  }
  return {
    ok: true,
    value: {
      type,
      payload: body,
      ...(appId.value !== undefined && { appId: appId.value }),
      ...(namespace.value !== undefined && { namespace: namespace.value }),
      ...(userId.value !== undefined && { userId: userId.value }),
      ...(sessionId.value !== undefined && { sessionId: sessionId.value }),
      ...(id.value !== undefined && { id: id.value }),
      ...(timestamp !== undefined && { timestamp }),
    },
  };
}

const ISO_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

function isIsoTimestamp(value: string): boolean {
  return ISO_PATTERN.test(value) && !Number.isNaN(Date.parse(value));
}

/**
 * Serializes an accepted event into the wire frame clients receive. Called once per event;
 * the same string goes to every matching client.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeEventFrame } from "./envelope.ts";
 * const frame = encodeEventFrame({
 *   tenant: "default",
 *   type: "app.status",
 *   appId: "web",
 *   payload: { status: "running" },
 *   id: "e1",
 *   seq: "ep-1",
 *   timestamp: "2026-01-01T00:00:00.000Z",
 * });
 * const parsed = JSON.parse(frame);
 * assert.equal(parsed.seq, "ep-1");
 * assert.equal(parsed.tenant, undefined, "the tenant stays on the server");
 * ```
 */
export function encodeEventFrame(event: HeraldEvent): string {
  return JSON.stringify({
    type: event.type,
    appId: event.appId,
    namespace: event.namespace,
    userId: event.userId,
    sessionId: event.sessionId,
    payload: event.payload,
    id: event.id,
    seq: event.seq,
    timestamp: event.timestamp,
  });
}

/**
 * The frame of an event whose cursor a store assigns later (the Redis history's script), split
 * where the cursor goes: `before + seq + after` is {@linkcode encodeEventFrame} of the event
 * with that `seq` (cursors need no JSON escaping). The store splices the cursor in without
 * knowing the frame's key order, which lives here only.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeEventFrame, encodeEventFrameAround } from "./envelope.ts";
 * const draft = {
 *   tenant: "t",
 *   type: "deploy.step",
 *   payload: { note: ',"seq":"fake' },
 *   id: "e1",
 *   timestamp: "2026-01-01T00:00:00.000Z",
 * };
 * const [before, after] = encodeEventFrameAround(draft);
 * assert.equal(before + "ep-7" + after, encodeEventFrame({ ...draft, seq: "ep-7" }));
 * ```
 */
export function encodeEventFrameAround(
  draft: Omit<HeraldEvent, "seq">,
): readonly [before: string, after: string] {
  const head = encodeEventFrame({ ...draft, seq: "" });
  // The frame ends with `"seq":"","timestamp":<string>}`: cut inside the empty seq.
  const tail = `","timestamp":${JSON.stringify(draft.timestamp)}}`;
  const cut = head.length - tail.length;
  return [head.slice(0, cut), head.slice(cut)];
}
