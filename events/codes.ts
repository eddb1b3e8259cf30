/**
 * The two code tables of the wire protocol: close codes end a connection, error codes answer
 * one message and leave the connection open.
 * @module
 */

/** A reason to end a connection: the WebSocket close code, its reason text, and whether to reconnect. */
export interface Disconnect {
  readonly code: number;
  readonly reason: string;
  readonly reconnect: boolean;
}

/**
 * Every way the hub closes a connection. 1000-1015 are RFC 6455 codes; 4000-4999 are Herald's
 * own (4000-4499: reconnect is expected to help; 4500-4999: it is not, without a change).
 * Auth closes: 4001 (the credential expired, was revoked, or its tenant or scopes no longer allow
 * what the connection holds: reconnect with a new token; clients treat it as "refresh the
 * token", like 4500-4999).
 */
export const DISCONNECT = {
  shutdown: { code: 1001, reason: "server shutting down", reconnect: true },
  binaryFrame: { code: 1003, reason: "binary frames are not supported", reconnect: false },
  messageTooBig: { code: 1009, reason: "message too big", reconnect: true },
  internal: { code: 1011, reason: "internal error", reconnect: true },
  tokenExpired: {
    code: 4001,
    reason: "token expired; reconnect with a new token",
    reconnect: true,
  },
  tokenRevoked: {
    code: 4001,
    reason: "token revoked; reconnect with a new token",
    reconnect: true,
  },
  tokenNarrowed: {
    code: 4001,
    reason: "token no longer allows this connection; reconnect with a new token",
    reconnect: true,
  },
  slowConsumer: { code: 4008, reason: "slow consumer", reconnect: true },
  eventsLost: { code: 4009, reason: "events were lost between nodes", reconnect: true },
} as const satisfies Record<string, Disconnect>;

/** Error codes sent in `{"type":"error","payload":{"code":...}}` replies. */
export const ERROR_CODES = {
  /** The frame is not valid JSON. */
  badJson: "bad_json",
  /** The message is JSON but not a valid message of its type. */
  badMessage: "bad_message",
  /** `type` names no message the hub knows. */
  unknownMessageType: "unknown_message_type",
  /** A `request` names a topic the hub does not serve. */
  unknownTopic: "unknown_topic",
  /**
   * The connection is not allowed to do this: publishing without the publish token or outside
   * its `publish:` scopes, subscribing outside its `subscribe:` scopes, a read without `*`.
   */
  forbidden: "forbidden",
  /** The connection's credential expires soon: send `refresh` with a new token. */
  tokenExpiring: "token_expiring",
  /** A `refresh` token was refused (invalid, expired, or another tenant); nothing changed. */
  unauthorized: "unauthorized",
  /**
   * The connection sent messages faster than its allowance, or its credential published faster
   * than `HERALD_PUBLISH_RATE`; this one was not processed.
   */
  rateLimited: "rate_limited",
  /** A per-connection limit (subscriptions) would be exceeded; nothing changed. */
  limitExceeded: "limit_exceeded",
  /** A published event was invalid. */
  badEvent: "bad_event",
  /** The hub cannot publish right now (its bus is unavailable); retry later. */
  unavailable: "unavailable",
  /** The hub failed to answer because of a fault of its own (logged); the connection stays. */
  internal: "internal_error",
  /** A `request` asked for something the hub does not know (an app, a cluster). */
  notFound: "not_found",
  /** A command names an agent that is registered but not connected (HTTP 409). */
  agentOffline: "agent_offline",
} as const;

/** One of the {@linkcode ERROR_CODES}. */
export type ErrorCode = typeof ERROR_CODES[keyof typeof ERROR_CODES];

/**
 * Why events were dropped for a client, as a `lagged` notice and the
 * `herald_events_dropped_total{reason}` label say it. The overflow policy that drops the oldest
 * is configured as `drop-oldest` (`HERALD_OVERFLOW`); the reason it reports is `drop_oldest`.
 */
export const LAG_REASONS = {
  /** The oldest queued event made room (`drop-oldest`, or `conflate` with nothing to conflate). */
  dropOldest: "drop_oldest",
  /** Queued events were superseded by a newer one with the same type and appId (`conflate`). */
  conflated: "conflated",
  /** The bus lost messages between nodes. */
  busGap: "bus_gap",
} as const;

/** One of the {@linkcode LAG_REASONS}. */
export type LagReason = typeof LAG_REASONS[keyof typeof LAG_REASONS];
