/**
 * The inbound side of a WebSocket client: decodes control messages and answers them.
 * Transport-neutral: the server layer feeds it text frames and tells it about binary ones.
 * @module
 */

import { DISCONNECT, ERROR_CODES } from "../events/codes.ts";
import { type Dialect, encodeDorguResponse } from "../events/dialects.ts";
import { decodeEventInput } from "../events/envelope.ts";
import {
  type ClientMessage,
  decodeClientMessage,
  encodeError,
  encodePong,
  encodeResponse,
  type MessageError,
  type RequestId,
  type SubscriptionFilter,
  type TopicView,
} from "../events/messages.ts";
import { getLogger } from "@logtape/logtape";
import type { Client } from "./client.ts";
import { classifyError } from "./errors.ts";
import type { Clock } from "./clock.ts";
import type { Hub } from "./hub.ts";
import type { ResumeOutcome } from "./resume.ts";
import type { Metrics } from "./metrics.ts";
import { ExpiryWatch, type Schedule } from "./expiry.ts";
import {
  isTenantName,
  mayPublishType,
  patternWithin,
  type Principal,
  userScoped,
} from "./principal.ts";
import { TokenBucket } from "./rate_limit.ts";

/** Limits on what one client may send. */
export interface SessionLimits {
  /** Largest inbound message in bytes; a larger one closes the connection with 1009. */
  readonly maxMessageBytes: number;
  /** Messages per second a client may send, sustained. */
  readonly messageRate: number;
  /** Messages a client may send at once before the rate applies. */
  readonly messageBurst: number;
  /** Reject event types outside the catalog. */
  readonly strictEvents: boolean;
  /** Deepest nesting of objects and arrays in a published payload (`HERALD_MAX_EVENT_DEPTH`). */
  readonly maxEventDepth: number;
}

/** Answers a `request` message; later features register topics (state, history...). */
export type RequestHandler = (client: Client, payload: Record<string, unknown>) =>
  | Record<string, unknown>
  | Promise<Record<string, unknown>>;

/**
 * What a session needs from the auth seam, in `token` and `jwt` modes (without it, `refresh`
 * is an unknown message type, as before those modes existed).
 */
export interface SessionIdentity {
  /** Verifies the token of a `refresh` message: its principal, or why it was refused. */
  refresh(token: string): Promise<Principal | string>;
  /** `token_expiring` goes out this long before the credential expires. */
  readonly expiryWarningMs: number;
  /** Replaces real timers in unit tests. */
  readonly schedule?: Schedule;
}

/** Publish requests per credential: null when allowed, else the seconds to wait. */
export type PublishAllowance = (principal: Principal) => number | null;

const encoder = new TextEncoder();
const log = getLogger(["herald", "session"]);

/** Byte length of a string in UTF-8 without encoding it when the answer is obvious. */
function exceedsBytes(text: string, limit: number): boolean {
  if (text.length > limit) return true;
  if (text.length * 3 <= limit) return false;
  return encoder.encode(text).byteLength > limit;
}

/** One client's control-message handler. */
export class Session {
  readonly client: Client;
  readonly #hub: Hub;
  readonly #limits: SessionLimits;
  readonly #metrics: Metrics;
  readonly #bucket: TokenBucket;
  readonly #clock: Clock;
  readonly #requests: ReadonlyMap<string, RequestHandler>;
  readonly #identity: SessionIdentity | undefined;
  readonly #publishAllowance: PublishAllowance | undefined;
  readonly #expiry: ExpiryWatch | undefined;

  constructor(
    hub: Hub,
    client: Client,
    deps: {
      limits: SessionLimits;
      clock: Clock;
      metrics: Metrics;
      requests: ReadonlyMap<string, RequestHandler>;
      identity?: SessionIdentity;
      publishAllowance?: PublishAllowance;
    },
  ) {
    this.#hub = hub;
    this.client = client;
    this.#limits = deps.limits;
    this.#metrics = deps.metrics;
    this.#requests = deps.requests;
    this.#clock = deps.clock;
    this.#bucket = new TokenBucket(deps.limits.messageRate, deps.limits.messageBurst, deps.clock);
    this.#identity = deps.identity;
    this.#publishAllowance = deps.publishAllowance;
    if (deps.identity !== undefined) {
      this.#expiry = new ExpiryWatch(client, {
        clock: deps.clock,
        warningMs: deps.identity.expiryWarningMs,
        ...(deps.identity.schedule === undefined ? {} : { schedule: deps.identity.schedule }),
      });
      this.#expiry.arm(client.principal.expiresAt);
    }
  }

  /** The connection ended: stop its timers. */
  close(): void {
    this.#expiry?.stop();
  }

  /** A binary frame: not part of the protocol, closes with 1003. */
  receiveBinary(): void {
    this.client.close(DISCONNECT.binaryFrame);
  }

  /** A text frame from the client. */
  receiveText(text: string): void {
    if (this.client.closed) return;
    if (exceedsBytes(text, this.#limits.maxMessageBytes)) {
      this.client.close(DISCONNECT.messageTooBig);
      return;
    }
    this.#metrics.messagesReceived.inc();
    const message = decodeClientMessage(text);
    // Every frame counts against the rate limit, malformed ones too: each gets a reply.
    if (!this.#bucket.take()) {
      this.#fail({
        code: ERROR_CODES.rateLimited,
        message:
          `more than ${this.#limits.messageRate} messages per second; this one was not processed`,
        ...requestIdOf(message),
      });
      return;
    }
    if (!("type" in message)) {
      this.#fail(message);
      return;
    }
    this.#dispatch(message);
  }

  #dispatch(message: ClientMessage): void {
    const client = this.client;
    const requestId = message.requestId;
    switch (message.type) {
      case "ping":
        client.reply(encodePong(requestId), "pong");
        return;
      case "subscribe": {
        const { view } = message;
        const granted = client.principal.may.subscribe;
        if (!view.patterns.every((pattern) => patternWithin(pattern, granted))) {
          this.#fail({
            code: ERROR_CODES.forbidden,
            message: `topic "${view.name}" is outside this credential's subscribe scopes`,
            ...requestIdOf(message),
          });
          return;
        }
        const filter = userScoped(client.principal, message.filter);
        if (filter === null) {
          this.#fail({
            code: ERROR_CODES.forbidden,
            message: "this credential may only subscribe to its own user id",
            ...requestIdOf(message),
          });
          return;
        }
        if (message.since !== undefined) {
          this.#resume(view, filter, message.since, requestId);
          return;
        }
        const result = this.#hub.subscribeAll(client, view.patterns, filter, view);
        if (result.state === "limit") {
          this.#fail({
            code: ERROR_CODES.limitExceeded,
            message: `a connection may hold at most ${result.max} subscriptions`,
            ...requestIdOf(message),
          });
          return;
        }
        client.reply(encodeSubscribed(requestId, view, this.#now()));
        return;
      }
      case "unsubscribe": {
        const { topic, dialect } = message;
        const removed = this.#hub.unsubscribe(client, topic);
        client.reply(
          dialect === "dorgu"
            ? encodeDorguResponse(requestId, topic, "unsubscribed", this.#now())
            : encodeResponse(requestId, topic, { status: "unsubscribed", topic, removed }),
        );
        return;
      }
      case "publish":
        this.#publish(message.event, requestId);
        return;
      case "request":
        this.#request(message.topic, message.payload, requestId);
        return;
      case "refresh":
        this.#refresh(message.token, requestId);
        return;
    }
  }

  #refresh(token: string, requestId: RequestId | undefined): void {
    const withId = requestId === undefined ? {} : { requestId };
    const identity = this.#identity;
    if (identity === undefined) {
      this.#fail({
        code: ERROR_CODES.unknownMessageType,
        message: 'unknown message type "refresh"',
        ...withId,
      });
      return;
    }
    identity.refresh(token).then((next) => {
      if (this.client.closed) return;
      if (typeof next === "string") {
        this.#fail({ code: ERROR_CODES.unauthorized, message: next, ...withId });
        return;
      }
      if (next.tenant !== this.client.principal.tenant) {
        this.#fail({
          code: ERROR_CODES.forbidden,
          message: "a refresh must keep the connection's tenant",
          ...withId,
        });
        return;
      }
      this.client.principal = next;
      // Verified against the tokens before a reload that may have landed meanwhile.
      this.#hub.recheck(this.client);
      if (this.client.closed) return;
      this.#expiry?.arm(next.expiresAt);
      this.client.reply(
        encodeResponse(requestId, undefined, {
          status: "refreshed",
          expiresAt: next.expiresAt == null ? null : new Date(next.expiresAt).toISOString(),
        }),
      );
    }, (error: unknown) => this.#failWith(error, "refresh", withId));
  }

  /** Now on the hub's clock, for the `timestamp` of dorgu's replies. */
  #now(): string {
    return new Date(this.#clock.now()).toISOString();
  }

  #resume(
    view: TopicView,
    filter: SubscriptionFilter,
    since: string,
    requestId: RequestId | undefined,
  ): void {
    const client = this.client;
    this.#hub.resume(
      client,
      view.patterns,
      filter,
      since,
      (outcome) => {
        client.reply(encodeSubscribed(requestId, view, this.#now(), outcome));
      },
      false,
      view,
    ).then((result) => {
      if (result.state === "limit") {
        this.#fail({
          code: ERROR_CODES.limitExceeded,
          message: `a connection may hold at most ${result.max} subscriptions`,
          ...(requestId === undefined ? {} : { requestId }),
        });
      }
    });
  }

  #publish(raw: unknown, requestId: RequestId | undefined): void {
    const withId = requestId === undefined ? {} : { requestId };
    if (!this.client.principal.may.publish) {
      this.#fail({
        code: ERROR_CODES.forbidden,
        message: "publishing needs the publish token on the connection",
        ...withId,
      });
      return;
    }
    const who = this.client.principal;
    const named = eventTenant(raw, who);
    const decoded = decodeEventInput(named.raw, {
      strict: this.#limits.strictEvents,
      maxDepth: this.#limits.maxEventDepth,
    });
    if (!decoded.ok) {
      this.#fail({ code: ERROR_CODES.badEvent, message: decoded.message, ...withId });
      return;
    }
    if (named.tenant === null) {
      this.#fail({ code: ERROR_CODES.badEvent, message: TENANT_FIELD_MESSAGE, ...withId });
      return;
    }
    if (!mayPublishType(who, decoded.value.type)) {
      this.#fail({
        code: ERROR_CODES.forbidden,
        message: `type "${decoded.value.type}" is outside this credential's publish scopes`,
        ...withId,
      });
      return;
    }
    const wait = this.#publishAllowance?.(who) ?? null;
    if (wait !== null) {
      this.#fail({
        code: ERROR_CODES.rateLimited,
        message: `this credential publishes faster than HERALD_PUBLISH_RATE; retry in ${wait} s`,
        ...withId,
      });
      return;
    }
    this.#hub.publish(named.tenant, [decoded.value]).then(
      ([acceptance]) => {
        this.client.reply(
          encodeResponse(requestId, undefined, { status: "accepted", ...acceptance! }),
        );
      },
      (error: unknown) => this.#failWith(error, "publish", withId),
    );
  }

  #request(topic: string, payload: Record<string, unknown>, requestId: RequestId | undefined) {
    const withId = requestId === undefined ? {} : { requestId };
    const handler = this.#requests.get(topic);
    if (handler === undefined) {
      const known = [...this.#requests.keys()];
      this.#fail({
        code: ERROR_CODES.unknownTopic,
        message: `unknown request topic "${topic}"` +
          (known.length > 0 ? ` (known: ${known.join(", ")})` : ""),
        ...withId,
      });
      return;
    }
    Promise.resolve().then(() => handler(this.client, payload)).then(
      (answer) => {
        this.client.reply(JSON.stringify({ type: "response", topic, requestId, payload: answer }));
      },
      (error: unknown) => this.#failWith(error, `request ${topic}`, withId),
    );
  }

  /**
   * Answers an error through the error table; a fault of the hub's own is logged and answered
   * `internal_error`, and the connection stays open.
   */
  #failWith(error: unknown, what: string, withId: { requestId?: RequestId }): void {
    const answer = classifyError(error);
    if (!answer.fault) {
      this.#fail({ code: answer.code, message: answer.message, ...withId });
      return;
    }
    log.error("Failed to answer {what}: {error}", { what, error });
    this.#fail({ code: answer.code, message: `the hub failed to answer ${what}`, ...withId });
  }

  #fail(error: MessageError): void {
    this.#metrics.errorsSent.incLabel(error.code);
    this.client.reply(encodeError(error), "error");
  }
}

/**
 * The reply to a subscribe with `since`: sent before the first replayed event.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeResumed } from "./session.ts";
 * assert.deepEqual(JSON.parse(encodeResumed(1, "deploy.*", { recovered: true, replayed: 2 })), {
 *   type: "response",
 *   topic: "deploy.*",
 *   requestId: 1,
 *   payload: { status: "subscribed", topic: "deploy.*", recovered: true, replayed: 2 },
 * });
 * ```
 */
export function encodeResumed(
  requestId: RequestId | undefined,
  topic: string,
  outcome: ResumeOutcome,
): string {
  return encodeResponse(requestId, topic, { status: "subscribed", topic, ...resumed(outcome) });
}

function resumed(outcome: ResumeOutcome) {
  return {
    recovered: outcome.recovered,
    replayed: outcome.replayed,
    ...(!outcome.recovered && { reason: outcome.reason }),
  };
}

/**
 * The reply to a subscribe, in the shape its dialect's clients read: dorgu's operator shape
 * (with `timestamp`) for a dorgu topic, Herald's otherwise; with the resume's outcome when the
 * subscribe carried `since`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeSubscribed } from "./session.ts";
 * const at = "2026-12-03T04:28:59.903Z";
 * assert.equal(
 *   encodeSubscribed("9", { name: "personas", dialect: "dorgu" }, at),
 *   '{"type":"response","topic":"personas","requestId":"9","payload":{"status":"subscribed",' +
 *     '"topic":"personas"},"timestamp":"2026-12-03T04:28:59.903Z"}',
 * );
 * assert.equal(
 *   encodeSubscribed("9", { name: "deploy.*", dialect: "herald" }, at),
 *   '{"type":"response","topic":"deploy.*","requestId":"9","payload":{"status":"subscribed",' +
 *     '"topic":"deploy.*"}}',
 * );
 * ```
 */
export function encodeSubscribed(
  requestId: RequestId | undefined,
  view: { readonly name: string; readonly dialect: Dialect },
  timestamp: string,
  outcome?: ResumeOutcome,
): string {
  const extra = outcome === undefined ? {} : resumed(outcome);
  if (view.dialect === "dorgu") {
    return encodeDorguResponse(requestId, view.name, "subscribed", timestamp, extra);
  }
  return encodeResponse(requestId, view.name, { status: "subscribed", topic: view.name, ...extra });
}

/** Why an event's `tenant` field was refused. */
export const TENANT_FIELD_MESSAGE =
  "tenant must be a tenant name (1-64 letters, digits, _, . or -)";

/**
 * The tenant an event is published into, and the event without its `tenant` field: a principal
 * with the `tenants:*` scope names it per event (null tenant: the name is invalid); for every
 * other principal the field stays, and decoding refuses it as an unknown field.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { eventTenant } from "./session.ts";
 * import { principal } from "./principal.ts";
 * const plane = { ...principal("ops", "plane", true) };
 * const multi = { ...plane, may: { ...plane.may, tenants: true } };
 * assert.deepEqual(eventTenant({ type: "a.b", tenant: "acme" }, multi), { tenant: "acme", raw: { type: "a.b" } });
 * assert.equal(eventTenant({ type: "a.b", tenant: "acme" }, plane).tenant, "ops");
 * ```
 */
export function eventTenant(
  raw: unknown,
  who: Principal,
): { tenant: string | null; raw: unknown } {
  if (
    !who.may.tenants || typeof raw !== "object" || raw === null || Array.isArray(raw) ||
    !("tenant" in raw)
  ) return { tenant: who.tenant, raw };
  const { tenant, ...rest } = raw as Record<string, unknown>;
  return { tenant: isTenantName(tenant) ? tenant : null, raw: rest };
}

function requestIdOf(message: { requestId?: RequestId }): { requestId?: RequestId } {
  return message.requestId === undefined ? {} : { requestId: message.requestId };
}
