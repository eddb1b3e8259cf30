/**
 * Read-only queries on a hub's state and history, shared by the WebSocket `request` topics
 * (`state`, `apps`, `personas`, `cluster`, `history`) and the REST endpoints (`GET /state`,
 * `/apps`, `/apps/:appId`, `/history`), so both answer the same payloads.
 * @module
 */

import { ERROR_CODES } from "../events/codes.ts";
import { addonNames } from "../events/dialects.ts";
import type { HeraldEvent } from "../events/envelope.ts";
import { isJsonObject, type JsonObject, type JsonValue, quoted } from "../events/json.ts";
import { decodeFilter, FILTER_FIELDS, matchesFilter } from "../events/messages.ts";
import { parseTopic, topicMatches } from "../events/topic.ts";
import type { Client } from "../hub/client.ts";
import { formatCursor, type History } from "../hub/history/history.ts";
import type { LiveState } from "./state.ts";
import { RequestError } from "../hub/errors.ts";
import type { RequestHandler } from "../hub/session.ts";

/** What the queries read: live state and the history. */
export interface Sources {
  readonly state: LiveState;
  readonly history: History;
}

/** Parameters a query reads, from a request payload or a query string. */
export type QueryParams = Readonly<Record<string, unknown>>;

function optionalString(params: QueryParams, field: string): string | undefined {
  const value = params[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string" || value.length === 0) {
    throw new RequestError(ERROR_CODES.badMessage, `${field} must be a non-empty string`);
  }
  return value;
}

/**
 * The cursor state is consistent with: its last folded event, or the start of the history's
 * epoch when it has none yet, so `subscribe` with it as `since` always follows on exactly.
 */
function stateSeq(sources: Sources, tenant: string): string {
  return sources.state.seq(tenant) ?? formatCursor(sources.history.epoch, 0);
}

/** The state snapshot of a tenant, or of one app (`appId`), with its cursor. */
export function stateQuery(sources: Sources, tenant: string, params: QueryParams): JsonObject {
  const snapshot = sources.state.snapshot(tenant, optionalString(params, "appId"));
  return { ...snapshot, seq: stateSeq(sources, tenant) };
}

/** Every app's state. */
export function appsQuery(sources: Sources, tenant: string): JsonObject {
  return {
    seq: stateSeq(sources, tenant),
    apps: sources.state.apps(tenant) as unknown as JsonValue[],
  };
}

/** One app's state; `not_found` when the hub knows no such app. */
export function appQuery(sources: Sources, tenant: string, appId: string): JsonObject {
  const app = sources.state.app(tenant, appId);
  if (app === null) throw new RequestError(ERROR_CODES.notFound, `no app "${appId}" in state`);
  return { seq: stateSeq(sources, tenant), app: app as unknown as JsonObject };
}

/** Personas, optionally of one `namespace`, as operator CLIs expect them. */
export function personasQuery(sources: Sources, tenant: string, params: QueryParams): JsonObject {
  const personas = sources.state.personas(tenant, optionalString(params, "namespace"));
  return { personas: personas as unknown as JsonValue[] };
}

/**
 * The cluster named `name`, or the first one known; `not_found` when there is none. Its `addons`
 * are a list of names, as dorgu's CLI decodes them (state keeps them as published).
 */
export function clusterQuery(sources: Sources, tenant: string, params: QueryParams): JsonObject {
  const name = optionalString(params, "name");
  const cluster = sources.state.cluster(tenant, name);
  if (cluster === null) {
    throw new RequestError(
      ERROR_CODES.notFound,
      name === undefined ? "no cluster is known yet" : `no cluster "${name}"`,
    );
  }
  return { ...cluster, addons: addonNames(cluster.addons) } as unknown as JsonObject;
}

/**
 * Retained events after `since` (or the oldest retained), matching `topic` (default `*`) and
 * `filter` ({appId, namespace, userId, sessionId}), at most `limit` (capped by `HERALD_HISTORY_READ_LIMIT`).
 */
export async function historyQuery(
  sources: Sources,
  tenant: string,
  params: QueryParams,
  maxLimit: number,
): Promise<JsonObject> {
  const since = optionalString(params, "since") ?? null;
  const rawTopic = optionalString(params, "topic") ?? "*";
  const topic = parseTopic(rawTopic);
  if (topic === null) {
    throw new RequestError(ERROR_CODES.badMessage, `topic ${quoted(rawTopic)} is not a pattern`);
  }
  const filter = decodeFilter(
    params.filter ?? Object.fromEntries(
      FILTER_FIELDS.flatMap((key) => params[key] === undefined ? [] : [[key, params[key]]]),
    ),
  );
  if (!filter.ok) throw new RequestError(ERROR_CODES.badMessage, filter.message);
  let limit = maxLimit;
  if (params.limit !== undefined && params.limit !== null) {
    const raw = Number(params.limit);
    if (!Number.isSafeInteger(raw) || raw < 1) {
      throw new RequestError(ERROR_CODES.badMessage, "limit must be a whole number of at least 1");
    }
    limit = Math.min(raw, maxLimit);
  }
  const match = (event: HeraldEvent) =>
    matchesFilter(filter.value, event) && topicMatches(topic, event.type);
  const page = await sources.history.read(tenant, { since, limit, match });
  if (page.state === "lost") {
    return { recovered: false, reason: page.reason, events: [], truncated: false };
  }
  return {
    recovered: true,
    events: page.events.map((stored) => JSON.parse(stored.frame)),
    truncated: page.truncated,
  };
}

/** The query parameters of a URL as `QueryParams`. */
export function paramsOf(url: URL): QueryParams {
  return Object.fromEntries(url.searchParams);
}

/** The `request` topics the WebSocket session answers. */
export function requestHandlers(
  sources: Sources,
  historyReadLimit: number,
): Map<string, RequestHandler> {
  const tenantOf = (client: Client) => client.principal.tenant;
  return new Map<string, RequestHandler>([
    ["state", (client, payload) => stateQuery(sources, tenantOf(client), payload)],
    ["apps", (client) => appsQuery(sources, tenantOf(client))],
    ["personas", (client, payload) => personasQuery(sources, tenantOf(client), payload)],
    ["cluster", (client, payload) => clusterQuery(sources, tenantOf(client), payload)],
    [
      "history",
      (client, payload) => {
        if (payload.filter !== undefined && !isJsonObject(payload.filter)) {
          throw new RequestError(ERROR_CODES.badMessage, "filter must be an object");
        }
        return historyQuery(sources, tenantOf(client), payload, historyReadLimit);
      },
    ],
  ]);
}
