/**
 * Every setting Herald reads, in one typed module: environment variables and flags,
 * validated at start with one clear message per bad value.
 * @module
 */

import { DEFAULT_MAX_EVENT_DEPTH } from "../events/envelope.ts";
import { OVERFLOW_POLICIES, type OverflowPolicy } from "../hub/overflow.ts";

/** The validated configuration. */
export interface Config {
  readonly port: number;
  readonly hostname: string;
  readonly publishToken: string | undefined;
  readonly dataDir: string;
  readonly allowedOrigins: readonly string[];
  readonly strictEvents: boolean;
  readonly clientBuffer: number;
  readonly socketHighWaterBytes: number;
  readonly overflow: OverflowPolicy;
  readonly stallTimeoutMs: number;
  readonly drainPollMs: number;
  readonly pingIntervalSeconds: number;
  readonly maxMessageBytes: number;
  readonly maxBodyBytes: number;
  readonly maxBatch: number;
  readonly maxEventDepth: number;
  readonly maxSubscriptions: number;
  readonly messageRate: number;
  readonly messageBurst: number;
  readonly idempotencyTtlMs: number;
  readonly idempotencyMaxKeys: number;
  readonly shutdownTimeoutMs: number;
  readonly logLevel: LogLevel;
  readonly logFormat: "text" | "json";
  readonly history: HistoryKind;
  readonly historySize: number;
  readonly historyMaxBytes: number;
  readonly historyTtlSeconds: number;
  readonly kvPath: string | undefined;
  readonly historyTimeoutMs: number;
  readonly replayLimit: number;
  readonly reorderWaitMs: number;
  readonly reorderMaxPending: number;
  readonly historyReadLimit: number;
  readonly stateMaxEntries: number;
  readonly stateMaxSteps: number;
  readonly sseHeartbeatSeconds: number;
  readonly bus: BusKind;
  readonly redisUrl: string;
  readonly redisPrefix: string;
  readonly busBatchMax: number;
  readonly busPublishTimeoutMs: number;
  readonly redisReconnectMinMs: number;
  readonly redisReconnectMaxMs: number;
  readonly redisStreamMaxLen: number;
  readonly debugHooks: boolean;
  readonly allowedHosts: readonly string[] | null;
  readonly maxConnections: number;
  readonly maxConnectionsPerIp: number;
  readonly bodyTimeoutMs: number;
  readonly httpServer: HttpServerKind;
  readonly headerTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxHeaderBytes: number;
  // Identity (issue 10): authentication mode, credentials and the limits per credential.
  readonly auth: AuthMode;
  readonly tokensFile: string | undefined;
  readonly tokensFileMaxBytes: number;
  readonly jwtSecret: string | undefined;
  readonly jwtPublicKeyFile: string | undefined;
  readonly jwtAlgorithm: JwtAlgorithm;
  readonly jwksUrl: string | undefined;
  readonly jwksRefreshSeconds: number;
  readonly jwksTimeoutMs: number;
  readonly jwtAudience: string | undefined;
  readonly jwtIssuer: string | undefined;
  readonly jwtClockSkewSeconds: number;
  readonly expiryWarningSeconds: number;
  readonly maxConnectionsPerTenant: number;
  readonly trustedProxies: readonly string[];
  readonly publishRate: number;
  readonly publishBurst: number;
  readonly upgradeRate: number;
  readonly upgradeBurst: number;
  readonly agentKey: string | undefined;
  readonly agentApproval: "auto" | "manual";
  readonly agentStaleMs: number;
  readonly agentCheckMs: number;
  readonly agentPingMs: number;
  readonly agentCommandTimeoutMs: number;
  readonly agentMaxWaitMs: number;
  readonly agentCommandsKept: number;
  readonly agentCommandTtlMs: number;
  readonly agentMaxFrameBytes: number;
  readonly agentStopOnShutdown: boolean;
  readonly presenceTtlMs: number;
  readonly dashboard: boolean;
}

/** Authentication modes `HERALD_AUTH` accepts. */
export const AUTH_MODES = ["none", "token", "jwt"] as const;
/** One of {@linkcode AUTH_MODES}. */
export type AuthMode = typeof AUTH_MODES[number];

/** Signature algorithms `HERALD_JWT_ALGORITHM` accepts for a public key file. */
export const JWT_ALGORITHMS = ["RS256", "ES256", "EdDSA"] as const;
/** One of {@linkcode JWT_ALGORITHMS}. */
export type JwtAlgorithm = typeof JWT_ALGORITHMS[number];

/** History backends `HERALD_HISTORY` accepts. */
export const HISTORY_KINDS = ["memory", "kv", "redis"] as const;
/** One of {@linkcode HISTORY_KINDS}. */
export type HistoryKind = typeof HISTORY_KINDS[number];

/** Bus implementations `HERALD_BUS` chooses from. */
export const BUS_KINDS = ["memory", "broadcast", "redis"] as const;
/** One of {@linkcode BUS_KINDS}. */
export type BusKind = typeof BUS_KINDS[number];

/** What serves HTTP under `deno run`: see HERALD_HTTP_SERVER and server/node_http.ts. */
export const HTTP_SERVER_KINDS = ["node", "deno"] as const;
/** One of {@linkcode HTTP_SERVER_KINDS}. */
export type HttpServerKind = typeof HTTP_SERVER_KINDS[number];

/** Log levels `HERALD_LOG_LEVEL` accepts. */
export const LOG_LEVELS = ["debug", "info", "warning", "error"] as const;
/** One of {@linkcode LOG_LEVELS}. */
export type LogLevel = typeof LOG_LEVELS[number];

/** One setting: where it comes from, its default, and how it is read. */
interface Setting<T> {
  readonly env: string;
  readonly flag?: string;
  readonly default: T;
  readonly description: string;
  readonly parse: (raw: string) => T | Error;
}

function integer(min: number, max: number): (raw: string) => number | Error {
  return (raw) => {
    const value = Number(raw);
    if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
      return new Error(`must be a whole number from ${min} to ${max}, got "${raw}"`);
    }
    return value;
  };
}

function oneOf<T extends string>(choices: readonly T[]): (raw: string) => T | Error {
  return (raw) =>
    (choices as readonly string[]).includes(raw)
      ? raw as T
      : new Error(`must be one of ${choices.join(", ")}, got "${raw}"`);
}

function flag(raw: string): boolean | Error {
  if (["1", "true", "yes", "on"].includes(raw)) return true;
  if (["0", "false", "no", "off", ""].includes(raw)) return false;
  return new Error(`must be 1 or 0, got "${raw}"`);
}

const text = (raw: string): string => raw;

function origins(raw: string): string[] | Error {
  const list = raw.split(",").map((origin) => origin.trim()).filter((origin) => origin !== "");
  for (const origin of list) {
    try {
      const url = new URL(origin);
      if (url.origin !== origin) {
        return new Error(`"${origin}" is not an origin (try "${url.origin}")`);
      }
    } catch {
      return new Error(`"${origin}" is not an origin such as https://dash.example.com`);
    }
  }
  return list;
}

/** Host names, lowercased; `*` alone means any host (null). */
function hosts(raw: string): string[] | null | Error {
  const list = raw.split(",").map((host) => host.trim().toLowerCase()).filter((host) =>
    host !== ""
  );
  if (list.includes("*")) return null;
  for (const host of list) {
    let parsed: URL;
    try {
      parsed = new URL(`http://${host}`);
    } catch {
      return new Error(`"${host}" is not a host name such as herald.example.com`);
    }
    if (parsed.host !== host || parsed.port !== "") {
      return new Error(`"${host}" is not a host name without port (try "${parsed.hostname}")`);
    }
  }
  return list;
}

function redisUrl(raw: string): string | Error {
  try {
    const url = new URL(raw);
    if (url.protocol === "redis:" || url.protocol === "rediss:") return raw;
  } catch {
    // Reported below.
  }
  return new Error(
    `must be a redis:// or rediss:// URL such as redis://127.0.0.1:6379, got "${raw}"`,
  );
}

function list(raw: string): string[] {
  return raw.split(",").map((item) => item.trim()).filter((item) => item !== "");
}

function httpUrl(raw: string): string | Error {
  try {
    const url = new URL(raw);
    if (url.protocol === "https:" || url.protocol === "http:") return raw;
  } catch {
    // Reported below.
  }
  return new Error(`must be an http:// or https:// URL, got "${raw}"`);
}

const KIB = 1024;
const MIB = 1024 * KIB;

/** The settings table; the README's table is written from it. */
export const SETTINGS = {
  port: {
    env: "PORT",
    flag: "--port",
    default: 8800,
    description: "TCP port to listen on (0 picks a free one).",
    parse: integer(0, 65535),
  },
  hostname: {
    env: "HERALD_HOSTNAME",
    flag: "--hostname",
    default: "0.0.0.0",
    description: "Address to listen on.",
    parse: text,
  },
  publishToken: {
    env: "HERALD_PUBLISH_TOKEN",
    default: undefined,
    description:
      "Bearer token producers present to publish. Unset: generated on first start and stored in the data directory.",
    parse: (raw: string) =>
      raw.length >= 16 ? raw : new Error("must be at least 16 characters long"),
  },
  dataDir: {
    env: "HERALD_DATA_DIR",
    flag: "--data-dir",
    default: ".herald",
    description: "Directory for the generated publish token.",
    parse: text,
  },
  allowedOrigins: {
    env: "HERALD_ALLOWED_ORIGINS",
    default: [] as string[],
    description:
      "Comma-separated browser origins allowed to open /ws, besides localhost, 127.0.0.1 and [::1].",
    parse: origins,
  },
  strictEvents: {
    env: "HERALD_STRICT_EVENTS",
    default: false,
    description: "1: reject event types outside the catalog.",
    parse: flag,
  },
  clientBuffer: {
    env: "HERALD_CLIENT_BUFFER",
    default: 256,
    description: "Events queued per client before the overflow policy applies.",
    parse: integer(1, 1_000_000),
  },
  socketHighWaterBytes: {
    env: "HERALD_SOCKET_HIGH_WATER",
    default: MIB,
    description: "Bytes a client's socket may buffer before its pump stops writing.",
    parse: integer(KIB, 1024 * MIB),
  },
  overflow: {
    env: "HERALD_OVERFLOW",
    default: "disconnect" as OverflowPolicy,
    description: "What a full client queue does: disconnect, drop-oldest or conflate.",
    parse: oneOf(OVERFLOW_POLICIES),
  },
  stallTimeoutMs: {
    env: "HERALD_STALL_TIMEOUT_MS",
    default: 10_000,
    description: "A client whose socket buffer has not shrunk for this long is closed (4008).",
    parse: integer(100, 3_600_000),
  },
  drainPollMs: {
    env: "HERALD_DRAIN_POLL_MS",
    default: 25,
    description: "How often a blocked client's socket buffer is checked again.",
    parse: integer(1, 10_000),
  },
  pingIntervalSeconds: {
    env: "HERALD_PING_INTERVAL",
    default: 30,
    description:
      "Seconds of silence before the hub pings a WebSocket; silent for twice this, it is closed. 0 disables.",
    parse: integer(0, 3600),
  },
  maxMessageBytes: {
    env: "HERALD_MAX_MESSAGE_BYTES",
    default: 512 * KIB,
    description: "Largest WebSocket message accepted; larger closes with 1009.",
    parse: integer(KIB, 64 * MIB),
  },
  maxBodyBytes: {
    env: "HERALD_MAX_BODY_BYTES",
    default: MIB,
    description: "Largest POST /events body; larger gets 413.",
    parse: integer(KIB, 256 * MIB),
  },
  maxBatch: {
    env: "HERALD_MAX_BATCH",
    default: 1000,
    description: "Most events in one POST /events array; more gets 413.",
    parse: integer(1, 100_000),
  },
  maxEventDepth: {
    env: "HERALD_MAX_EVENT_DEPTH",
    default: DEFAULT_MAX_EVENT_DEPTH,
    description:
      "Deepest nesting of objects and arrays in an event payload (the payload is level 1); deeper gets 400 bad_event.",
    parse: integer(1, 1000),
  },
  maxSubscriptions: {
    env: "HERALD_MAX_SUBSCRIPTIONS",
    default: 100,
    description: "Subscriptions one connection may hold.",
    parse: integer(1, 100_000),
  },
  messageRate: {
    env: "HERALD_MESSAGE_RATE",
    default: 50,
    description: "Control messages per second one connection may send, sustained.",
    parse: integer(1, 1_000_000),
  },
  messageBurst: {
    env: "HERALD_MESSAGE_BURST",
    default: 100,
    description: "Control messages one connection may send at once.",
    parse: integer(1, 1_000_000),
  },
  idempotencyTtlMs: {
    env: "HERALD_IDEMPOTENCY_TTL_MS",
    default: 300_000,
    description: "How long a producer-supplied event id is remembered to answer retries.",
    parse: integer(1000, 86_400_000),
  },
  idempotencyMaxKeys: {
    env: "HERALD_IDEMPOTENCY_MAX_KEYS",
    default: 100_000,
    description: "Most event ids remembered at once (oldest forgotten first).",
    parse: integer(1, 10_000_000),
  },
  shutdownTimeoutMs: {
    env: "HERALD_SHUTDOWN_TIMEOUT_MS",
    default: 10_000,
    description: "Longest a graceful shutdown may take before the process exits anyway.",
    parse: integer(100, 600_000),
  },
  logLevel: {
    env: "HERALD_LOG_LEVEL",
    flag: "--log-level",
    default: "info" as LogLevel,
    description: "Least severe log level written: debug, info, warning, error.",
    parse: oneOf(LOG_LEVELS),
  },
  logFormat: {
    env: "HERALD_LOG_FORMAT",
    default: "text" as "text" | "json",
    description: "text for people, json for one JSON object per line.",
    parse: oneOf(["text", "json"] as const),
  },
  history: {
    env: "HERALD_HISTORY",
    default: "memory" as HistoryKind,
    description:
      "Where recent events are kept for resume: memory (this process), kv (Deno KV, durable) or redis (shared by every node).",
    parse: oneOf(HISTORY_KINDS),
  },
  historySize: {
    env: "HERALD_HISTORY_SIZE",
    default: 10_000,
    description: "Events kept per tenant for resume (the oldest go first).",
    parse: integer(1, 10_000_000),
  },
  historyMaxBytes: {
    env: "HERALD_HISTORY_MAX_BYTES",
    default: 64 * MIB,
    description:
      "Memory history: encoded event bytes kept per tenant (the oldest go first); memory use is up to about twice this.",
    parse: integer(KIB, 64 * 1024 * MIB),
  },
  historyTtlSeconds: {
    env: "HERALD_HISTORY_TTL",
    default: 3600,
    description: "Seconds an event is kept for resume.",
    parse: integer(1, 30 * 86_400),
  },
  kvPath: {
    env: "HERALD_KV_PATH",
    default: undefined,
    description:
      "File of the Deno KV history (HERALD_HISTORY=kv). Unset: Deno.openKv() default (the managed store on Deno Deploy).",
    parse: (raw: string) => raw.length > 0 ? raw : new Error("must not be empty"),
  },
  historyTimeoutMs: {
    env: "HERALD_HISTORY_TIMEOUT_MS",
    default: 5000,
    description:
      "A Redis history command not answered in this time fails (publish answers 503, resume recovered:false).",
    parse: integer(10, 600_000),
  },
  replayLimit: {
    env: "HERALD_REPLAY_LIMIT",
    default: 10_000,
    description:
      "Most events one resume replays; a client further behind gets recovered:false and loads a snapshot.",
    parse: integer(1, 10_000_000),
  },
  reorderWaitMs: {
    env: "HERALD_REORDER_WAIT_MS",
    default: 250,
    description:
      "Shared history (kv, redis): how long an event waits for one with an earlier seq from another node before the hole is filled from the history.",
    parse: integer(1, 60_000),
  },
  reorderMaxPending: {
    env: "HERALD_REORDER_MAX_PENDING",
    default: 10_000,
    description:
      "Shared history: events of one tenant that may wait for an earlier seq before the hole is filled at once.",
    parse: integer(1, 1_000_000),
  },

  historyReadLimit: {
    env: "HERALD_HISTORY_READ_LIMIT",
    default: 1000,
    description: "Most events one history request (WebSocket or GET /history) returns.",
    parse: integer(1, 1_000_000),
  },
  stateMaxEntries: {
    env: "HERALD_STATE_MAX_ENTRIES",
    default: 10_000,
    description:
      "Apps, personas, clusters, resources and agents each kept in state per tenant (least recently updated evicted).",
    parse: integer(1, 10_000_000),
  },
  stateMaxSteps: {
    env: "HERALD_STATE_MAX_STEPS",
    default: 100,
    description: "Steps kept per deploy, forge or teardown run in state (newest kept).",
    parse: integer(1, 100_000),
  },
  sseHeartbeatSeconds: {
    env: "HERALD_SSE_HEARTBEAT",
    default: 15,
    description: "Seconds between comment heartbeats on /events/stream.",
    parse: integer(1, 3600),
  },

  bus: {
    env: "HERALD_BUS",
    default: "memory" as BusKind,
    description:
      "How nodes share events: memory (one process), broadcast (isolates of one process, deno serve --parallel) or redis (several processes or machines).",
    parse: oneOf(BUS_KINDS),
  },

  redisUrl: {
    env: "HERALD_REDIS_URL",
    default: "redis://127.0.0.1:6379",
    description:
      "Redis server of the redis bus and the redis history (redis:// or rediss://, may hold user:password).",
    parse: redisUrl,
  },

  redisPrefix: {
    env: "HERALD_REDIS_PREFIX",
    default: "herald",
    description: "Prefix of every Redis key Herald writes, so several hubs can share one Redis.",
    parse: (raw: string) =>
      /^[A-Za-z0-9_.:-]{1,64}$/.test(raw)
        ? raw
        : new Error("must be 1 to 64 letters, digits or _ . : -"),
  },

  busBatchMax: {
    env: "HERALD_BUS_BATCH_MAX",
    default: 500,
    description:
      "Most events in one bus message; the publishes of one tick share messages up to this size.",
    parse: integer(1, 100_000),
  },

  busPublishTimeoutMs: {
    env: "HERALD_BUS_PUBLISH_TIMEOUT_MS",
    default: 5_000,
    description: "A publish the redis bus has not confirmed within this time gets 503.",
    parse: integer(100, 600_000),
  },

  redisReconnectMinMs: {
    env: "HERALD_REDIS_RECONNECT_MIN_MS",
    default: 100,
    description: "First wait before reconnecting to Redis; doubles per failed attempt.",
    parse: integer(10, 60_000),
  },

  redisReconnectMaxMs: {
    env: "HERALD_REDIS_RECONNECT_MAX_MS",
    default: 5_000,
    description: "Longest wait between attempts to reconnect to Redis.",
    parse: integer(10, 600_000),
  },

  redisStreamMaxLen: {
    env: "HERALD_REDIS_STREAM_MAXLEN",
    default: 100_000,
    description:
      "Bus messages kept in the Redis stream (approximately); a node further behind detects a gap.",
    parse: integer(100, 100_000_000),
  },

  debugHooks: {
    env: "HERALD_DEBUG_HOOKS",
    default: false,
    description:
      "Test only: 1 enables the debug.node and debug.stallOnBusMessage request topics. Never in production.",
    parse: flag,
  },

  // The HTTP edge: which Host names are served, how many long-lived connections, how long a
  // body may take. See docs/security.md and "Limits and settings" in docs/operations.md.
  allowedHosts: {
    env: "HERALD_ALLOWED_HOSTS",
    default: null as string[] | null,
    description:
      "Comma-separated Host names served (any port; * any); others get 421. Unset: any, or loopback names on loopback.",
    parse: hosts,
  },
  maxConnections: {
    env: "HERALD_MAX_CONNECTIONS",
    default: 10_000,
    description:
      "WebSocket and SSE connections this process holds at once; more get 503 (bounds memory).",
    parse: integer(1, 10_000_000),
  },
  maxConnectionsPerIp: {
    env: "HERALD_MAX_CONNECTIONS_PER_IP",
    default: 256,
    description:
      "WebSocket and SSE connections one client IP holds at once; more get 429. Behind a proxy every client shares its IP: raise it there.",
    parse: integer(1, 10_000_000),
  },
  bodyTimeoutMs: {
    env: "HERALD_BODY_TIMEOUT_MS",
    default: 10_000,
    description: "A POST /events body not fully received in this time gets 408 and is dropped.",
    parse: integer(100, 600_000),
  },
  httpServer: {
    env: "HERALD_HTTP_SERVER",
    default: "node" as HttpServerKind,
    description:
      "node (node:http, which bounds request heads and idle connections with the timeouts below) or deno (Deno.serve, which cannot). Under deno serve and on Deno Deploy, Deno.serve always.",
    parse: oneOf(HTTP_SERVER_KINDS),
  },
  headerTimeoutMs: {
    env: "HERALD_HEADER_TIMEOUT_MS",
    default: 10_000,
    description:
      "HERALD_HTTP_SERVER=node: a connection whose request head is not complete in this time (slow loris, silent sockets) gets 408 and is closed.",
    parse: integer(100, 600_000),
  },
  keepAliveTimeoutMs: {
    env: "HERALD_KEEP_ALIVE_TIMEOUT_MS",
    default: 5_000,
    description:
      "HERALD_HTTP_SERVER=node: an HTTP connection idle between requests this long is closed.",
    parse: integer(100, 600_000),
  },
  maxHeaderBytes: {
    env: "HERALD_MAX_HEADER_BYTES",
    default: 16_384,
    description:
      "HERALD_HTTP_SERVER=node: a request head (request line and headers) larger than this gets 431.",
    parse: integer(1_024, 1_048_576),
  },
  // Identity (issue 10).
  auth: {
    env: "HERALD_AUTH",
    default: "none" as AuthMode,
    description:
      "none (anonymous reads, the publish token publishes), token (HERALD_TOKENS_FILE) or jwt. See docs/security.md.",
    parse: oneOf(AUTH_MODES),
  },
  tokensFile: {
    env: "HERALD_TOKENS_FILE",
    default: undefined as string | undefined,
    description:
      "HERALD_AUTH=token: JSON file of tokens with tenant, name and scopes; reloaded on SIGHUP and on change.",
    parse: text,
  },
  tokensFileMaxBytes: {
    env: "HERALD_TOKENS_FILE_MAX_BYTES",
    default: 4 * MIB,
    description: "A larger tokens file is refused (the previous tokens stay).",
    parse: integer(1, 1024 * MIB),
  },
  jwtSecret: {
    env: "HERALD_JWT_SECRET",
    default: undefined as string | undefined,
    description: "HERALD_AUTH=jwt: the HS256 shared secret (at least 32 bytes).",
    parse: text,
  },
  jwtPublicKeyFile: {
    env: "HERALD_JWT_PUBLIC_KEY_FILE",
    default: undefined as string | undefined,
    description: "HERALD_AUTH=jwt: a PEM public key (SPKI) verifying HERALD_JWT_ALGORITHM tokens.",
    parse: text,
  },
  jwtAlgorithm: {
    env: "HERALD_JWT_ALGORITHM",
    default: "RS256" as JwtAlgorithm,
    description: "The algorithm of HERALD_JWT_PUBLIC_KEY_FILE: RS256, ES256 or EdDSA.",
    parse: oneOf(JWT_ALGORITHMS),
  },
  jwksUrl: {
    env: "HERALD_JWT_JWKS_URL",
    default: undefined as string | undefined,
    description:
      "HERALD_AUTH=jwt: a JWKS URL; keys are cached, refetched on an unknown kid, kept when a fetch fails.",
    parse: httpUrl,
  },
  jwksRefreshSeconds: {
    env: "HERALD_JWT_JWKS_REFRESH_SECONDS",
    default: 300,
    description: "Refetch the JWKS this often; an unknown kid refetches at most once per 10 s.",
    parse: integer(1, 86_400),
  },
  jwksTimeoutMs: {
    env: "HERALD_JWT_JWKS_TIMEOUT_MS",
    default: 5_000,
    description: "A JWKS fetch taking longer fails (the cached keys stay).",
    parse: integer(100, 60_000),
  },
  jwtAudience: {
    env: "HERALD_JWT_AUDIENCE",
    default: undefined as string | undefined,
    description: "When set, a JWT's aud must include it.",
    parse: text,
  },
  jwtIssuer: {
    env: "HERALD_JWT_ISSUER",
    default: undefined as string | undefined,
    description: "When set, a JWT's iss must equal it.",
    parse: text,
  },
  jwtClockSkewSeconds: {
    env: "HERALD_JWT_CLOCK_SKEW_SECONDS",
    default: 30,
    description: "Clock skew allowed when checking a JWT's exp and nbf.",
    parse: integer(0, 3600),
  },
  expiryWarningSeconds: {
    env: "HERALD_EXPIRY_WARNING_SECONDS",
    default: 60,
    description:
      "A connection whose credential expires gets one token_expiring warning this long before (SSE: event token_expiring; 0: none); closed 4001 at expiry.",
    parse: integer(0, 86_400),
  },
  maxConnectionsPerTenant: {
    env: "HERALD_MAX_CONNECTIONS_PER_TENANT",
    default: 10_000,
    description: "WebSocket and SSE connections one tenant holds on this process; more get 429.",
    parse: integer(1, 10_000_000),
  },
  trustedProxies: {
    env: "HERALD_TRUSTED_PROXIES",
    default: [] as string[],
    description:
      "Comma-separated proxy IPs whose X-Forwarded-For names the client IP for per-IP limits; others' is ignored.",
    parse: list,
  },
  publishRate: {
    env: "HERALD_PUBLISH_RATE",
    default: 1000,
    description:
      "Publish requests (POST /events, WebSocket publish) per second per credential; more get 429 / rate_limited.",
    parse: integer(1, 10_000_000),
  },
  publishBurst: {
    env: "HERALD_PUBLISH_BURST",
    default: 2000,
    description:
      "Publish requests one credential may send at once before HERALD_PUBLISH_RATE applies.",
    parse: integer(1, 10_000_000),
  },
  upgradeRate: {
    env: "HERALD_UPGRADE_RATE",
    default: 200,
    description: "WebSocket and SSE connection attempts per second per client IP; more get 429.",
    parse: integer(1, 10_000_000),
  },
  upgradeBurst: {
    env: "HERALD_UPGRADE_BURST",
    default: 5000,
    description:
      "Connection attempts one client IP may make at once before HERALD_UPGRADE_RATE applies.",
    parse: integer(1, 10_000_000),
  },

  // Agents (issue 11): registration, the agent connection, commands. See "Agents" in
  // docs/protocol.md and docs/operations.md.
  agentKey: {
    env: "HERALD_AGENT_KEY",
    default: undefined,
    description:
      "Key agents present in X-Agent-API-Key to register and connect. Unset: generated on first start and stored in the data directory (agent-key).",
    parse: (raw: string) =>
      raw.length >= 16 ? raw : new Error("must be at least 16 characters long"),
  },
  agentApproval: {
    env: "HERALD_AGENT_APPROVAL",
    default: "auto" as const,
    description:
      "auto: registered agents may connect at once; manual: they stay pending until POST /agents/:id/approve.",
    parse: oneOf(["auto", "manual"] as const),
  },
  agentStaleMs: {
    env: "HERALD_AGENT_STALE_MS",
    default: 45_000,
    description:
      "An agent without a heartbeat for longer than this is stale: closed (4020) and reported offline.",
    parse: integer(1_000, 3_600_000),
  },
  agentCheckMs: {
    env: "HERALD_AGENT_CHECK_MS",
    default: 5_000,
    description:
      "How often staleness, command timeouts, application pings and dead nodes' agents are checked.",
    parse: integer(100, 60_000),
  },
  agentPingMs: {
    env: "HERALD_AGENT_PING_MS",
    default: 30_000,
    description: "Interval of the application ping frame sent to each agent (0: never).",
    parse: integer(0, 3_600_000),
  },
  agentCommandTimeoutMs: {
    env: "HERALD_AGENT_COMMAND_TIMEOUT_MS",
    default: 60_000,
    description: "A command without complete or failed after this long is timed_out.",
    parse: integer(100, 86_400_000),
  },
  agentMaxWaitMs: {
    env: "HERALD_AGENT_MAX_WAIT_MS",
    default: 60_000,
    description: "Longest ?wait= a command request may ask for.",
    parse: integer(0, 600_000),
  },
  agentCommandsKept: {
    env: "HERALD_AGENT_COMMANDS_KEPT",
    default: 10_000,
    description: "Commands the memory agent store remembers (oldest forgotten first).",
    parse: integer(10, 10_000_000),
  },
  agentCommandTtlMs: {
    env: "HERALD_AGENT_COMMAND_TTL_MS",
    default: 3_600_000,
    description: "How long the Redis agent store keeps a command's record.",
    parse: integer(1_000, 604_800_000),
  },
  agentMaxFrameBytes: {
    env: "HERALD_AGENT_MAX_FRAME_BYTES",
    default: 512 * KIB,
    description: "Largest frame an agent may send; a larger one closes the connection with 1009.",
    parse: integer(1 * KIB, 64 * MIB),
  },
  agentStopOnShutdown: {
    env: "HERALD_AGENT_STOP_ON_SHUTDOWN",
    default: false,
    description:
      "1: on shutdown send agents a shutdown frame (StreamSpace agents then stop for good). 0: close with 1001 so they reconnect.",
    parse: flag,
  },
  presenceTtlMs: {
    env: "HERALD_PRESENCE_TTL_MS",
    default: 15_000,
    description:
      "With the redis bus: a node that stops renewing its presence for this long counts as dead; its agents go offline.",
    parse: integer(1_000, 600_000),
  },
  // The dashboard at / (web/, built into web/dist/). See "The dashboard" in the README.
  dashboard: {
    env: "HERALD_DASHBOARD",
    default: true,
    description:
      "Serve the dashboard at / and its assets under /assets/; 0 turns it off (/ then answers 404).",
    parse: flag,
  },
} satisfies { [K in keyof Config]: Setting<Config[K]> };

/** The configuration is invalid; `problems` has one line per bad value. */
export class ConfigError extends Error {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(`Invalid configuration:\n  ${problems.join("\n  ")}`);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

function readFlags(args: readonly string[], problems: string[]): Map<string, string> {
  const known = new Set(
    Object.values(SETTINGS).flatMap((setting) => "flag" in setting ? [setting.flag] : []),
  );
  const flags = new Map<string, string>();
  for (let index = 0; index < args.length; index++) {
    const arg = args[index]!;
    const [name, inline] = arg.includes("=") ? arg.split(/=(.*)/s, 2) : [arg, undefined];
    if (name === undefined || !known.has(name)) {
      problems.push(`${arg}: unknown flag (known: ${[...known].join(", ")})`);
      continue;
    }
    const value = inline ?? args[++index];
    if (value === undefined) {
      problems.push(`${name}: needs a value`);
      continue;
    }
    flags.set(name, value);
  }
  return flags;
}

/**
 * Reads the configuration from an environment and command-line flags (flags win).
 * Throws {@linkcode ConfigError} listing every bad value.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadConfig } from "./config.ts";
 * const config = loadConfig({ PORT: "9000" }, ["--hostname", "127.0.0.1"]);
 * assert.deepEqual([config.port, config.hostname], [9000, "127.0.0.1"]);
 * ```
 */
export function loadConfig(
  env: Readonly<Record<string, string | undefined>>,
  args: readonly string[] = [],
): Config {
  const problems: string[] = [];
  const flags = readFlags(args, problems);
  const values: Record<string, unknown> = {};
  for (const [key, setting] of Object.entries(SETTINGS) as [string, Setting<unknown>][]) {
    const fromFlag = setting.flag === undefined ? undefined : flags.get(setting.flag);
    // An empty variable counts as unset, as in most shells' `VAR= command` idiom.
    const fromEnv = env[setting.env] === "" ? undefined : env[setting.env];
    const raw = fromFlag ?? fromEnv;
    if (raw === undefined) {
      values[key] = setting.default;
      continue;
    }
    const parsed = setting.parse(raw);
    if (parsed instanceof Error) {
      problems.push(`${fromFlag !== undefined ? setting.flag : setting.env} ${parsed.message}`);
    } else {
      values[key] = parsed;
    }
  }
  if (problems.length === 0) problems.push(...authProblems(values as unknown as Config));
  if (problems.length > 0) throw new ConfigError(problems);
  return values as unknown as Config;
}

/** What an authentication mode needs and does not have. */
function authProblems(config: Config): string[] {
  if (config.auth === "token" && config.tokensFile === undefined) {
    return ["HERALD_AUTH=token needs HERALD_TOKENS_FILE (a JSON file of tokens)"];
  }
  if (config.auth !== "jwt") return [];
  const keys = [config.jwtSecret, config.jwtPublicKeyFile, config.jwksUrl].filter((key) =>
    key !== undefined
  );
  if (keys.length !== 1) {
    return [
      "HERALD_AUTH=jwt needs exactly one of HERALD_JWT_SECRET, HERALD_JWT_PUBLIC_KEY_FILE, HERALD_JWT_JWKS_URL",
    ];
  }
  if (config.jwtSecret !== undefined && new TextEncoder().encode(config.jwtSecret).length < 32) {
    return ["HERALD_JWT_SECRET must be at least 32 bytes"];
  }
  return [];
}

/** The environment this process runs with, or an empty one where env access is not granted. */
export function processEnv(): Record<string, string> {
  try {
    return Deno.env.toObject();
  } catch {
    return {};
  }
}
