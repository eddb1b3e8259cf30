/**
 * Control messages between clients and the hub: decoding what clients send and encoding
 * what the hub replies.
 * @module
 */

import { ERROR_CODES, type ErrorCode, type LagReason } from "./codes.ts";
import {
  type Decoded,
  invalid,
  isJsonObject,
  type JsonObject,
  type JsonValue,
  quoted,
} from "./json.ts";
import { type Dialect, dorguTopic } from "./dialects.ts";
import { MAX_NAME_LENGTH } from "./envelope.ts";
import { parseTopic, type TopicPattern } from "./topic.ts";

/** Echoed on every reply to a message that carried one. */
export type RequestId = string | number;

/**
 * Longest string `requestId` accepted (UTF-16 code units), a protocol constant. A longer one,
 * or a number that is not a safe integer (`1e400`, `1.5`, `2**60`), is refused with
 * `bad_message` and not echoed, so every echo is exact and every reply small.
 */
export const MAX_REQUEST_ID_LENGTH = 128;

/** Exact-match filters a subscription may carry. */
export interface SubscriptionFilter {
  readonly appId?: string;
  readonly namespace?: string;
  readonly userId?: string;
  readonly sessionId?: string;
}

/** The fields a {@linkcode SubscriptionFilter} may name, in the order they are documented. */
export const FILTER_FIELDS = ["appId", "namespace", "userId", "sessionId"] as const;

/**
 * True when an event's `appId`, `namespace`, `userId` and `sessionId` satisfy the filter (exact
 * match, each optional).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { matchesFilter } from "./messages.ts";
 * assert.equal(matchesFilter({ appId: "web" }, { appId: "web", namespace: "prod" }), true);
 * assert.equal(matchesFilter({ appId: "web" }, { appId: "api" }), false);
 * assert.equal(matchesFilter({}, {}), true);
 * ```
 */
export function matchesFilter(filter: SubscriptionFilter, event: SubscriptionFilter): boolean {
  return (filter.appId === undefined || event.appId === filter.appId) &&
    (filter.namespace === undefined || event.namespace === filter.namespace) &&
    (filter.userId === undefined || event.userId === filter.userId) &&
    (filter.sessionId === undefined || event.sessionId === filter.sessionId);
}

/**
 * What a subscribe names: the topic as the client wrote it, the Herald patterns it stands for
 * and the dialect its events are framed in (a bare dorgu topic stands for several patterns).
 */
export interface TopicView {
  readonly name: string;
  readonly patterns: readonly TopicPattern[];
  readonly dialect: Dialect;
}

/** A message from a client, after validation. */
export type ClientMessage =
  | {
    readonly type: "subscribe";
    readonly requestId?: RequestId;
    readonly view: TopicView;
    readonly filter: SubscriptionFilter;
    /** Resume after this cursor (any string; one the hub cannot place answers recovered:false). */
    readonly since?: string;
  }
  | {
    readonly type: "unsubscribe";
    readonly requestId?: RequestId;
    readonly topic: string;
    readonly dialect: Dialect;
  }
  | { readonly type: "ping"; readonly requestId?: RequestId }
  | { readonly type: "publish"; readonly requestId?: RequestId; readonly event: unknown }
  /** A new credential for a connection whose credential expires (`token` and `jwt` modes). */
  | { readonly type: "refresh"; readonly requestId?: RequestId; readonly token: string }
  | {
    readonly type: "request";
    readonly requestId?: RequestId;
    readonly topic: string;
    readonly payload: JsonObject;
  };

/** Why a client message was refused, with the request id to echo when one could be read. */
export interface MessageError {
  readonly code: ErrorCode;
  readonly message: string;
  readonly requestId?: RequestId;
}

/**
 * Decodes a filter object; exported for the `/ws` query string, which carries the same fields.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeFilter } from "./messages.ts";
 * assert.deepEqual(decodeFilter({ appId: "web" }), { ok: true, value: { appId: "web" } });
 * assert.equal(decodeFilter({ colour: "red" }).ok, false);
 * ```
 */
export function decodeFilter(raw: unknown): Decoded<SubscriptionFilter> {
  if (raw === undefined) return { ok: true, value: {} };
  if (!isJsonObject(raw)) return invalid("filter must be an object");
  const filter: { -readonly [K in keyof SubscriptionFilter]: string } = {};
  for (const [key, value] of Object.entries(raw)) {
    if (!isFilterField(key)) {
      return invalid(`unknown filter field ${quoted(key)} (allowed: ${FILTER_FIELDS.join(", ")})`);
    }
    if (typeof value !== "string" || value.length === 0 || value.length > MAX_NAME_LENGTH) {
      return invalid(`filter.${key} must be a non-empty string`);
    }
    filter[key] = value;
  }
  return { ok: true, value: filter };
}

function isFilterField(key: string): key is typeof FILTER_FIELDS[number] {
  return (FILTER_FIELDS as readonly string[]).includes(key);
}

/** A topic as a subscribe names it: a bare dorgu topic, or a Herald pattern. */
function viewOf(raw: JsonObject): Decoded<TopicView> {
  if (typeof raw.topic !== "string") return invalid("topic must be a string");
  const dorgu = dorguTopic(raw.topic);
  if (dorgu !== null) {
    return { ok: true, value: { name: raw.topic, patterns: dorgu.patterns, dialect: "dorgu" } };
  }
  const topic = parseTopic(raw.topic);
  if (topic === null) {
    return invalid(
      `topic ${
        quoted(raw.topic)
      } is not a pattern: use "*", a prefix such as "deploy.*", an exact type, or a dorgu topic (personas, cluster, deployments, events)`,
    );
  }
  return { ok: true, value: { name: topic.topic, patterns: [topic], dialect: "herald" } };
}

/**
 * A subscribe's filter: `filter`, and for a dorgu topic the `namespace` of its `payload` (dorgu's
 * CLI puts its options there).
 */
function filterOf(raw: JsonObject, view: TopicView): Decoded<SubscriptionFilter> {
  const fromPayload = view.dialect === "dorgu" && isJsonObject(raw.payload) &&
      raw.payload.namespace !== undefined
    ? { namespace: raw.payload.namespace }
    : {};
  if (
    Object.keys(fromPayload).length > 0 && (raw.filter === undefined || isJsonObject(raw.filter))
  ) {
    return decodeFilter({ ...raw.filter ?? {}, ...fromPayload });
  }
  return decodeFilter(raw.filter);
}

/**
 * Decodes one text frame from a client.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeClientMessage } from "./messages.ts";
 * assert.deepEqual(decodeClientMessage('{"type":"ping","requestId":"3"}'), {
 *   type: "ping",
 *   requestId: "3",
 * });
 * assert.equal((decodeClientMessage("{") as { code: string }).code, "bad_json");
 * ```
 */
export function decodeClientMessage(text: string): ClientMessage | MessageError {
  let raw: JsonValue;
  try {
    raw = JSON.parse(text);
  } catch {
    return { code: ERROR_CODES.badJson, message: "the message is not valid JSON" };
  }
  if (!isJsonObject(raw)) {
    return { code: ERROR_CODES.badMessage, message: "a message must be a JSON object" };
  }
  const requestIdRaw = raw.requestId;
  let requestId: RequestId | undefined;
  if (
    (typeof requestIdRaw === "string" && requestIdRaw.length <= MAX_REQUEST_ID_LENGTH) ||
    Number.isSafeInteger(requestIdRaw)
  ) {
    requestId = requestIdRaw as RequestId;
  } else if (requestIdRaw !== undefined) {
    return {
      code: ERROR_CODES.badMessage,
      message:
        `requestId must be a string of at most ${MAX_REQUEST_ID_LENGTH} characters or an integer from -(2^53-1) to 2^53-1`,
    };
  }
  const withId = requestId === undefined ? {} : { requestId };
  const fail = (message: string): MessageError => ({
    code: ERROR_CODES.badMessage,
    message,
    ...withId,
  });
  switch (raw.type) {
    case "subscribe": {
      const view = viewOf(raw);
      if (!view.ok) return fail(view.message);
      const filter = filterOf(raw, view.value);
      if (!filter.ok) return fail(filter.message);
      if (raw.since !== undefined && raw.since !== null && typeof raw.since !== "string") {
        return fail("since must be a cursor string (the seq of the last event received)");
      }
      return {
        type: "subscribe",
        view: view.value,
        filter: filter.value,
        ...(typeof raw.since === "string" && { since: raw.since }),
        ...withId,
      };
    }
    case "unsubscribe": {
      const view = viewOf(raw);
      if (!view.ok) return fail(view.message);
      return {
        type: "unsubscribe",
        topic: view.value.name,
        dialect: view.value.dialect,
        ...withId,
      };
    }
    case "ping":
      return { type: "ping", ...withId };
    case "publish":
      if (raw.event === undefined) return fail("publish needs an event");
      return { type: "publish", event: raw.event, ...withId };
    case "refresh":
      if (typeof raw.token !== "string" || raw.token.length === 0) {
        return fail("refresh needs a token string");
      }
      return { type: "refresh", token: raw.token, ...withId };
    case "request": {
      if (typeof raw.topic !== "string") return fail("topic must be a string");
      if (raw.payload !== undefined && !isJsonObject(raw.payload)) {
        return fail("payload must be an object when present");
      }
      return { type: "request", topic: raw.topic, payload: raw.payload ?? {}, ...withId };
    }
    case undefined:
      return fail("type is required");
    default:
      return {
        code: ERROR_CODES.unknownMessageType,
        message: `unknown message type ${quoted(raw.type)}`,
        ...withId,
      };
  }
}

/**
 * Encodes a `response` reply.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeResponse } from "./messages.ts";
 * assert.deepEqual(JSON.parse(encodeResponse("7", "deploy.*", { status: "subscribed" })), {
 *   type: "response",
 *   topic: "deploy.*",
 *   requestId: "7",
 *   payload: { status: "subscribed" },
 * });
 * ```
 */
export function encodeResponse(
  requestId: RequestId | undefined,
  topic: string | undefined,
  payload: JsonObject,
): string {
  return JSON.stringify({ type: "response", topic, requestId, payload });
}

/**
 * Encodes a `pong` reply.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodePong } from "./messages.ts";
 * assert.equal(encodePong(3), '{"type":"pong","requestId":3}');
 * ```
 */
export function encodePong(requestId: RequestId | undefined): string {
  return JSON.stringify({ type: "pong", requestId });
}

/**
 * Encodes an `error` reply.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeError } from "./messages.ts";
 * assert.deepEqual(JSON.parse(encodeError({ code: "bad_json", message: "not JSON" })), {
 *   type: "error",
 *   payload: { code: "bad_json", message: "not JSON" },
 * });
 * ```
 */
export function encodeError(error: MessageError): string {
  return JSON.stringify({
    type: "error",
    requestId: error.requestId,
    payload: { code: error.code, message: error.message },
  });
}

/**
 * Encodes the warning that the connection's credential expires soon: a `token_expiring` error
 * with no `requestId` and, beside the code and message, the instant of expiry (ISO 8601).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeTokenExpiring } from "./messages.ts";
 * const frame = encodeTokenExpiring(Date.UTC(2026, 11, 3, 9), "reconnect with a new token");
 * assert.deepEqual(JSON.parse(frame).payload, {
 *   code: "token_expiring",
 *   message: "reconnect with a new token",
 *   expiresAt: "2026-12-03T09:00:00.000Z",
 * });
 * ```
 */
export function encodeTokenExpiring(expiresAt: number, message: string): string {
  return JSON.stringify({
    type: "error",
    payload: {
      code: ERROR_CODES.tokenExpiring,
      message,
      expiresAt: new Date(expiresAt).toISOString(),
    },
  });
}

/**
 * Encodes the notice that precedes the next event after events were dropped for this client.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeLagged } from "./messages.ts";
 * assert.deepEqual(JSON.parse(encodeLagged(2, "drop_oldest")).payload, {
 *   dropped: 2,
 *   reason: "drop_oldest",
 * });
 * ```
 */
export function encodeLagged(dropped: number, reason: LagReason): string {
  return JSON.stringify({ type: "lagged", payload: { dropped, reason } });
}
