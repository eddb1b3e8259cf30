/**
 * What a streaming connection asks for when it opens, shared by the WebSocket and SSE adapters:
 * the subscriptions and resume cursor of its query string, and subscribing it to them.
 * @module
 */

import type { Dialect } from "../../events/dialects.ts";
import { quoted } from "../../events/json.ts";
import { decodeFilter, FILTER_FIELDS, type SubscriptionFilter } from "../../events/messages.ts";
import { parseTopic, type TopicPattern } from "../../events/topic.ts";
import type { Client } from "../../hub/client.ts";
import type { Hub } from "../../hub/hub.ts";
import { patternWithin, type Principal, userScoped } from "../../hub/principal.ts";
import { encodeResumed } from "../../hub/session.ts";
import type { Metrics } from "../../hub/metrics.ts";
import type { Access, Authenticator, Refusal } from "../auth.ts";
import type { Config } from "../config.ts";
import { refuse as refusalResponse } from "../errors.ts";
import { originAllowed } from "../origin.ts";
import { httpError } from "../responses.ts";

/** Subscriptions asked for in the query string. */
export interface InitialSubscriptions {
  readonly topics: readonly TopicPattern[];
  readonly filter: SubscriptionFilter;
  /** No `topic` given: the client gets `*` until its first explicit subscribe. */
  readonly implicit: boolean;
  /** `?since=`: resume after this cursor. */
  readonly since: string | null;
  /** `streamspace` when the client connected the StreamSpace way (`?user_id=`, `?session_id=`). */
  readonly dialect: Dialect;
}

/** StreamSpace's query parameters: the filter field each one sets. */
const STREAMSPACE_PARAMS = { user_id: "userId", session_id: "sessionId" } as const;

/**
 * Reads `topic` (repeatable), the filters (`appId`, `namespace`, `userId`, `sessionId`) and
 * `since` from a query string; StreamSpace's `user_id` and `session_id` set the user and session
 * filters and frame the connection's events the StreamSpace way. More distinct topics than
 * `maxTopics` (the subscription limit) is an error, never a truncation.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readQuery } from "./_initial.ts";
 * const initial = readQuery(new URL("http://hub/ws?user_id=user1"), 10);
 * assert.ok(typeof initial !== "string");
 * assert.deepEqual([initial.dialect, initial.filter, initial.implicit], [
 *   "streamspace",
 *   { userId: "user1" },
 *   true,
 * ]);
 * assert.equal(typeof readQuery(new URL("http://hub/ws?user_id=a&userId=b"), 10), "string");
 * ```
 */
export function readQuery(url: URL, maxTopics: number): InitialSubscriptions | string {
  const topics = new Map<string, TopicPattern>();
  for (const raw of url.searchParams.getAll("topic")) {
    const topic = parseTopic(raw);
    if (topic === null) {
      return `topic ${quoted(raw)} is not a pattern: use "*", "deploy.*" or an exact type`;
    }
    topics.set(topic.topic, topic);
    if (topics.size > maxTopics) {
      return `at most ${maxTopics} topics (HERALD_MAX_SUBSCRIPTIONS), got more`;
    }
  }
  const filterFields: Record<string, string> = {};
  for (const field of FILTER_FIELDS) {
    const value = url.searchParams.get(field);
    if (value !== null) filterFields[field] = value;
  }
  let dialect: Dialect = "herald";
  for (const [param, field] of Object.entries(STREAMSPACE_PARAMS)) {
    const value = url.searchParams.get(param);
    if (value === null) continue;
    if (field in filterFields) return `give ${param} or ${field}, not both`;
    filterFields[field] = value;
    dialect = "streamspace";
  }
  const filter = decodeFilter(filterFields);
  if (!filter.ok) return filter.message.replace("filter.", "");
  const implicit = topics.size === 0;
  return {
    topics: implicit ? [parseTopic("*")!] : [...topics.values()],
    filter: filter.value,
    implicit,
    since: url.searchParams.get("since"),
    dialect,
  };
}

/**
 * Subscribes a client that just connected to what its query string asked for, resuming after
 * `since` when given (one `subscribed` reply per topic, before the first replayed event).
 */
export function subscribeInitial(hub: Hub, client: Client, initial: InitialSubscriptions): void {
  const { topics, filter, since, implicit, dialect } = initial;
  const view = { dialect };
  if (since === null) {
    hub.subscribeInitial(client, topics, filter, implicit, view);
  } else {
    void hub.resume(
      client,
      topics,
      filter,
      since,
      (outcome) => {
        for (const topic of topics) client.reply(encodeResumed(undefined, topic.topic, outcome));
      },
      implicit,
      view,
    );
  }
  // Authenticated before it registered: a tokens reload in between has not seen it yet.
  hub.recheck(client);
}

/**
 * The checks every streaming connection passes before it opens, in this order: its origin, its
 * query string, then the auth seam. Answers the refusal, or what the connection asked for and
 * who it is.
 */
export async function admitStream(
  request: Request,
  config: Pick<Config, "allowedOrigins" | "maxSubscriptions">,
  auth: Authenticator,
  access: Access,
  metrics?: Metrics,
): Promise<Response | { initial: InitialSubscriptions; principal: Principal }> {
  const refuse = (refusal: Refusal) => {
    metrics?.authRefusals.incLabel(refusal.code);
    return refusalResponse(refusal);
  };
  const ownHost = new URL(request.url).host;
  if (!originAllowed(request.headers.get("origin"), config.allowedOrigins, ownHost)) {
    return httpError("origin_forbidden", "this origin may not connect; see HERALD_ALLOWED_ORIGINS");
  }
  const initial = readQuery(new URL(request.url), config.maxSubscriptions);
  if (typeof initial === "string") return httpError("bad_request", initial);
  const authentication = await auth.authenticate(request, access);
  if (!authentication.ok) return refuse(authentication.refusal);
  const who = authentication.principal;
  const filter = userScoped(who, initial.filter);
  if (filter === null) {
    return refuse({
      code: "forbidden",
      message: "this credential may only subscribe to its own user id",
    });
  }
  const granted = who.may.subscribe;
  if (initial.implicit && !granted.includes("*")) {
    // No topic asked for: everything this credential may read, rather than `*`.
    const topics = granted.map((pattern) => parseTopic(pattern)!);
    return { initial: { ...initial, filter, topics, implicit: false }, principal: who };
  }
  const outside = initial.topics.find((topic) => !patternWithin(topic, granted));
  if (outside !== undefined) {
    return refuse({
      code: "forbidden",
      message: `topic "${outside.topic}" is outside this credential's subscribe scopes`,
    });
  }
  return { initial: { ...initial, filter }, principal: who };
}
