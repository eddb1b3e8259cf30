/**
 * Dialects: the frame shapes other seed systems' clients read, as views of Herald's events.
 *
 * A dialect belongs to a subscription and is chosen by what the client says: a `subscribe` to a
 * bare dorgu topic (`personas`, `cluster`, `deployments`, `events`) is a dorgu subscription; a
 * connection opened with `?user_id=` or `?session_id=` is a StreamSpace one; everything else is
 * Herald's own frame (which Norn's clients read unchanged). {@linkcode DORGU_TOPICS} is the one
 * table from dorgu topics to Herald event types and from dorgu payload fields to their sources.
 * @module
 */

import type { HeraldEvent } from "./envelope.ts";
import { isJsonObject, type JsonObject, type JsonValue } from "./json.ts";
import type { RequestId } from "./messages.ts";
import { parseTopic, topicMatches, type TopicPattern } from "./topic.ts";

/** The frame shapes a subscription can be delivered in. */
export const DIALECTS = {
  /** Herald's event frame (Norn's hook and CLI read it too). */
  herald: "herald",
  /** dorgu's operator frames: `{type:"event", topic, payload, timestamp}`. */
  dorgu: "dorgu",
  /** StreamSpace's notifier frames: `{type, sessionId, userId, timestamp, data}`. */
  streamspace: "streamspace",
} as const;

/** One of {@linkcode DIALECTS}. */
export type Dialect = typeof DIALECTS[keyof typeof DIALECTS];

/** Where one field of a dorgu payload comes from. */
export type DorguSource =
  /** The event type without its category: `persona.updated` gives `updated`. */
  | { readonly from: "action" }
  /** The whole event type (`validation.result`), for topics that span categories. */
  | { readonly from: "type" }
  /** A payload field, else (when `or` is given) that envelope field. */
  | { readonly from: "payload"; readonly field: string; readonly or?: "appId" | "namespace" }
  /** A payload field holding addons (names or objects with `name`), as a list of names. */
  | { readonly from: "addonNames"; readonly field: string };

/** One dorgu topic: the Herald topic patterns it maps to and its payload's fields. */
export interface DorguTopic {
  readonly patterns: readonly TopicPattern[];
  /** dorgu payload field -> source, in frame order; a field with no value is omitted. */
  readonly fields: Readonly<Record<string, DorguSource>>;
}

const action = { from: "action" } as const;
const payload = (field: string, or?: "appId" | "namespace"): DorguSource =>
  or === undefined ? { from: "payload", field } : { from: "payload", field, or };
const patterns = (...topics: string[]) => topics.map((topic) => parseTopic(topic)!);

/**
 * dorgu's topics, by the name its CLI subscribes with (`dorgu watch personas|cluster|events`),
 * documented field by field in docs/protocol.md ("Dialects").
 */
export const DORGU_TOPICS: Readonly<Record<string, DorguTopic>> = {
  personas: {
    patterns: patterns("persona.*"),
    fields: {
      eventType: action,
      namespace: payload("namespace", "namespace"),
      name: payload("name", "appId"),
      phase: payload("phase"),
      health: payload("health"),
    },
  },
  cluster: {
    patterns: patterns("cluster.*"),
    fields: {
      eventType: action,
      name: payload("name"),
      phase: payload("phase"),
      nodeCount: payload("nodeCount"),
      applicationCount: payload("applicationCount"),
      addons: { from: "addonNames", field: "addons" },
    },
  },
  deployments: {
    patterns: patterns("deploy.*"),
    fields: {
      eventType: action,
      namespace: payload("namespace", "namespace"),
      name: payload("name", "appId"),
      phase: payload("status"),
      step: payload("step"),
      imageTag: payload("imageTag"),
      error: payload("error"),
    },
  },
  events: {
    patterns: patterns("validation.*", "reconcile.*"),
    fields: {
      eventType: { from: "type" },
      namespace: payload("namespace", "namespace"),
      name: payload("name", "appId"),
      passed: payload("passed"),
      issueCount: payload("issueCount"),
      severity: payload("severity"),
      issues: payload("issues"),
    },
  },
};

/**
 * The dorgu topic named `name`, or null when it is not one (it is then a Herald pattern).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dorguTopic } from "./dialects.ts";
 * assert.deepEqual(dorguTopic("personas")?.patterns.map((p) => p.topic), ["persona.*"]);
 * assert.equal(dorguTopic("persona.*"), null);
 * assert.equal(dorguTopic("toString"), null);
 * ```
 */
export function dorguTopic(name: string): DorguTopic | null {
  return Object.hasOwn(DORGU_TOPICS, name) ? DORGU_TOPICS[name]! : null;
}

/**
 * The name of the dorgu topic an event type belongs to, or null.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dorguTopicOf } from "./dialects.ts";
 * assert.equal(dorguTopicOf("cluster.nodeAdded"), "cluster");
 * assert.equal(dorguTopicOf("reconcile.ended"), "events");
 * assert.equal(dorguTopicOf("log.line"), null);
 * ```
 */
export function dorguTopicOf(type: string): string | null {
  for (const [name, topic] of Object.entries(DORGU_TOPICS)) {
    if (topic.patterns.some((pattern) => topicMatches(pattern, type))) return name;
  }
  return null;
}

/**
 * The namespace of an event as dorgu sees it and filters on it: the payload's `namespace` (where
 * dorgu's operator puts it), else the event's own.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dorguNamespace } from "./dialects.ts";
 * assert.equal(dorguNamespace({ namespace: "a", payload: { namespace: "b" } }), "b");
 * assert.equal(dorguNamespace({ namespace: "a", payload: {} }), "a");
 * ```
 */
export function dorguNamespace(
  event: { readonly namespace?: string; readonly payload: JsonObject },
): string | undefined {
  const namespace = event.payload.namespace;
  return typeof namespace === "string" ? namespace : event.namespace;
}

/**
 * Addons as dorgu reads them, a list of names: strings stay, objects give their `name`, anything
 * else is left out. What was published is kept as published (history, `request state`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { addonNames } from "./dialects.ts";
 * assert.deepEqual(
 *   addonNames(["argocd", { name: "prometheus", version: "2.51" }, { version: "1" }, 7]),
 *   ["argocd", "prometheus"],
 * );
 * assert.deepEqual(addonNames(undefined), []);
 * ```
 */
export function addonNames(addons: JsonValue | undefined): string[] {
  if (!Array.isArray(addons)) return [];
  const names: string[] = [];
  for (const addon of addons) {
    if (typeof addon === "string") names.push(addon);
    else if (isJsonObject(addon) && typeof addon.name === "string") names.push(addon.name);
  }
  return names;
}

function dorguValue(source: DorguSource, event: HeraldEvent): JsonValue | undefined {
  switch (source.from) {
    case "action":
      return event.type.slice(event.type.indexOf(".") + 1);
    case "type":
      return event.type;
    case "payload":
      return event.payload[source.field] ??
        (source.or === undefined ? undefined : event[source.or]);
    case "addonNames":
      return event.payload[source.field] === undefined
        ? undefined
        : addonNames(event.payload[source.field]);
  }
}

/**
 * The dorgu payload of an event under `topic` (fields with no value are omitted).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DORGU_TOPICS, dorguPayload } from "./dialects.ts";
 * const event = {
 *   tenant: "t",
 *   type: "persona.updated",
 *   payload: { namespace: "production", name: "nginx", phase: "Degraded", extra: 1 },
 *   id: "e1",
 *   seq: "ep-1",
 *   timestamp: "2026-01-01T00:00:00.000Z",
 * };
 * assert.deepEqual(dorguPayload(DORGU_TOPICS.personas!, event), {
 *   eventType: "updated",
 *   namespace: "production",
 *   name: "nginx",
 *   phase: "Degraded",
 * });
 * ```
 */
export function dorguPayload(topic: DorguTopic, event: HeraldEvent): JsonObject {
  const out: JsonObject = {};
  for (const [field, source] of Object.entries(topic.fields)) {
    const value = dorguValue(source, event);
    if (value !== undefined && value !== null) out[field] = value;
  }
  return out;
}

/**
 * An event as dorgu's CLI reads it: `{type:"event", topic, payload, timestamp, seq}` (`seq`, which
 * dorgu ignores, is the resume cursor). Null when the type maps to no dorgu topic.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeDorguEvent } from "./dialects.ts";
 * const frame = encodeDorguEvent({
 *   tenant: "t",
 *   type: "persona.updated",
 *   payload: { namespace: "production", name: "nginx", phase: "Degraded", health: "Unhealthy" },
 *   id: "e1",
 *   seq: "ep-1",
 *   timestamp: "2026-01-01T00:00:00.000Z",
 * });
 * assert.equal(
 *   frame,
 *   '{"type":"event","topic":"personas","payload":{"eventType":"updated","namespace":"production",' +
 *     '"name":"nginx","phase":"Degraded","health":"Unhealthy"},"timestamp":"2026-01-01T00:00:00.000Z","seq":"ep-1"}',
 * );
 * ```
 */
export function encodeDorguEvent(event: HeraldEvent): string | null {
  const name = dorguTopicOf(event.type);
  if (name === null) return null;
  return JSON.stringify({
    type: "event",
    topic: name,
    payload: dorguPayload(DORGU_TOPICS[name]!, event),
    timestamp: event.timestamp,
    seq: event.seq,
  });
}

/**
 * dorgu's reply to a subscribe or unsubscribe, in its operator's shape:
 * `{type:"response", topic, requestId, payload:{status, topic, ...extra}, timestamp}`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeDorguResponse } from "./dialects.ts";
 * assert.equal(
 *   encodeDorguResponse("17", "personas", "subscribed", "2026-01-01T00:00:00.000Z"),
 *   '{"type":"response","topic":"personas","requestId":"17","payload":{"status":"subscribed",' +
 *     '"topic":"personas"},"timestamp":"2026-01-01T00:00:00.000Z"}',
 * );
 * ```
 */
export function encodeDorguResponse(
  requestId: RequestId | undefined,
  topic: string,
  status: "subscribed" | "unsubscribed",
  timestamp: string,
  extra: JsonObject = {},
): string {
  return JSON.stringify({
    type: "response",
    topic,
    requestId,
    payload: { status, topic, ...extra },
    timestamp,
  });
}

/**
 * An event as StreamSpace's notifier sends it: `{type, sessionId, userId, timestamp, data, seq}`
 * (`data` is the payload; `seq`, an addition, is the resume cursor).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeStreamSpaceEvent } from "./dialects.ts";
 * const frame = encodeStreamSpaceEvent({
 *   tenant: "t",
 *   type: "session.created",
 *   userId: "user1",
 *   sessionId: "user1-firefox",
 *   payload: { image: "firefox" },
 *   id: "e1",
 *   seq: "ep-1",
 *   timestamp: "2026-01-01T00:00:00.000Z",
 * });
 * assert.equal(
 *   frame,
 *   '{"type":"session.created","sessionId":"user1-firefox","userId":"user1",' +
 *     '"timestamp":"2026-01-01T00:00:00.000Z","data":{"image":"firefox"},"seq":"ep-1"}',
 * );
 * ```
 */
export function encodeStreamSpaceEvent(event: HeraldEvent): string {
  return JSON.stringify({
    type: event.type,
    sessionId: event.sessionId,
    userId: event.userId,
    timestamp: event.timestamp,
    data: event.payload,
    seq: event.seq,
  });
}

/**
 * The frame of `event` in `dialect`; `heraldFrame` (serialized once already) for Herald's own.
 * A dorgu subscription only matches types of its topic, so its frame always exists; should
 * one not, Herald's frame goes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeIn } from "./dialects.ts";
 * const event = {
 *   tenant: "t",
 *   type: "session.updated",
 *   userId: "u1",
 *   payload: {},
 *   id: "e1",
 *   seq: "ep-1",
 *   timestamp: "2026-01-01T00:00:00.000Z",
 * };
 * assert.equal(encodeIn("herald", event, "{}"), "{}");
 * assert.equal(JSON.parse(encodeIn("streamspace", event, "{}")).userId, "u1");
 * ```
 */
export function encodeIn(dialect: Dialect, event: HeraldEvent, heraldFrame: string): string {
  switch (dialect) {
    case "herald":
      return heraldFrame;
    case "dorgu":
      return encodeDorguEvent(event) ?? heraldFrame;
    case "streamspace":
      return encodeStreamSpaceEvent(event);
  }
}
