/**
 * Herald's composition root: read the config, build the pieces, serve, and shut down cleanly
 * on SIGTERM or SIGINT. It is also the entry of the single `herald` binary: a first argument
 * naming a CLI command (`herald watch deploys --app web`) runs the terminal client of
 * `cli/main.ts` instead of the hub; `herald` alone or `herald serve [flags]` runs the hub
 * (see {@linkcode entryOf}). The hub runs two ways:
 * - `deno run main.ts` (`deno task start`): calls `Deno.serve` itself on `PORT`.
 * - `deno serve [--parallel] main.ts` (`deno task start:parallel`): every isolate evaluates
 *   this module, builds its own app at top level and hands `deno serve` its default export
 *   `{ fetch }`; `deno serve` owns the listener and its `--port`.
 * Under `deno run`, Deno prints a hint that the module has `export default { fetch }`; it is
 * harmless (the module serves itself).
 * @module
 */

import { MemoryAgentStore } from "./agents/store.ts";
import type { AgentStore } from "./agents/store.ts";
import { AgentRegistry } from "./agents/registry.ts";
import { agentRequests } from "./agents/requests.ts";
import { agentOfKey, deriveAgentKey, isIssuedKey } from "./agents/keys.ts";
import { BroadcastBus } from "./hub/bus/broadcast.ts";
import type { Bus } from "./hub/bus/bus.ts";
import { MemoryBus } from "./hub/bus/memory.ts";
import { type Clock, systemClock } from "./hub/clock.ts";
import type { History } from "./hub/history/history.ts";
import { KvHistory } from "./hub/history/kv.ts";
import { MemoryHistory } from "./hub/history/memory.ts";
import { RedisHistory } from "./hub/history/redis.ts";
import { Hub } from "./hub/hub.ts";
import { Metrics } from "./hub/metrics.ts";
import { MemoryPresence } from "./hub/presence/memory.ts";
import type { Presence } from "./hub/presence/presence.ts";
import { type App, createApp } from "./server/app.ts";
import {
  type AgentKeys,
  type Authenticator,
  createAuthenticator,
  DEFAULT_TENANT,
  PublishTokenAuth,
} from "./server/auth.ts";
import { RequestError } from "./hub/errors.ts";
import { readsAll } from "./hub/principal.ts";
import type { RequestHandler } from "./hub/session.ts";
import { type Config, ConfigError, loadConfig, processEnv } from "./server/config.ts";
import { builtDashboard } from "./server/dashboard.ts";
import { debugRequests } from "./server/debug.ts";
import { IsolateRoll, parallelIsolates } from "./server/isolates.ts";
import { flushLogs, logger, redactSecret, setUpLogging } from "./server/log.ts";
import { serveNodeHttp } from "./server/node_http.ts";
import { checkRuntime } from "./server/runtime.ts";
import { httpError } from "./server/responses.ts";
import { loadPublishToken, SecretToken } from "./server/token.ts";
import { requestHandlers } from "./state/queries.ts";
import { LiveState } from "./state/state.ts";

/** Addresses only this machine reaches: `HERALD_AUTH=none` is safe there. */
const LOOPBACK_HOSTS = ["127.0.0.1", "::1", "[::1]", "localhost"];

/** The first arguments that run the `herald` CLI (cli/main.ts) rather than the hub. */
export const CLI_COMMANDS: ReadonlySet<string> = new Set([
  "watch",
  "tail",
  "publish",
  "state",
  "apps",
  "agents",
  "help",
  "--help",
  "-h",
]);

/**
 * What `herald ARGS` runs: the CLI when the first argument is one of {@linkcode CLI_COMMANDS}
 * (with every argument), otherwise the hub with its flags (`serve` first is optional).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { entryOf } from "./main.ts";
 * assert.deepEqual(entryOf([]), { run: "hub", args: [] });
 * assert.deepEqual(entryOf(["serve", "--port", "9000"]), { run: "hub", args: ["--port", "9000"] });
 * assert.deepEqual(entryOf(["--port", "9000"]), { run: "hub", args: ["--port", "9000"] });
 * assert.deepEqual(entryOf(["apps", "--json"]), { run: "cli", args: ["apps", "--json"] });
 * ```
 */
export function entryOf(args: readonly string[]): { run: "hub" | "cli"; args: string[] } {
  const [first, ...rest] = args;
  if (first === "serve") return { run: "hub", args: rest };
  if (first !== undefined && CLI_COMMANDS.has(first)) return { run: "cli", args: [...args] };
  return { run: "hub", args: [...args] };
}

/** The history `HERALD_HISTORY` names. */
export function createHistory(config: Config, clock: Clock): History {
  const retention = { maxEvents: config.historySize, ttlMs: config.historyTtlSeconds * 1000 };
  switch (config.history) {
    case "memory":
      return new MemoryHistory({ ...retention, maxBytes: config.historyMaxBytes }, clock);
    case "kv":
      return new KvHistory(retention, clock, config.kvPath);
    case "redis":
      return new RedisHistory(
        retention,
        clock,
        config.redisUrl,
        config.historyTimeoutMs,
        config.redisPrefix,
      );
  }
}

/**
 * The bus `HERALD_BUS` names, for node `node` (not started: the hub starts it). The Redis
 * client is loaded only when the redis bus is chosen, so single-process hubs never pay for it.
 */
export async function createBus(config: Config, node: string): Promise<Bus> {
  switch (config.bus) {
    case "memory":
      return new MemoryBus(node);
    case "broadcast":
      return new BroadcastBus({ node, maxBatch: config.busBatchMax });
    case "redis": {
      const { RedisBus } = await import("./hub/bus/redis.ts");
      return new RedisBus({
        node,
        url: config.redisUrl,
        prefix: config.redisPrefix,
        maxBatch: config.busBatchMax,
        publishTimeoutMs: config.busPublishTimeoutMs,
        reconnectMinMs: config.redisReconnectMinMs,
        reconnectMaxMs: config.redisReconnectMaxMs,
        streamMaxLen: config.redisStreamMaxLen,
        idempotencyTtlMs: config.idempotencyTtlMs,
      });
    }
  }
}

/** Where agents are recorded: the agent store and presence. */
export interface AgentParts {
  readonly store: AgentStore;
  readonly presence: Presence;
}

/**
 * The agent store and presence for `config`: shared through Redis with the redis bus (loaded
 * only then), in memory otherwise (one process: with the broadcast bus each isolate knows only
 * its own agents).
 */
export async function createAgentParts(
  config: Config,
  node: string,
  clock: Clock,
): Promise<AgentParts> {
  if (config.bus !== "redis") {
    return {
      store: new MemoryAgentStore(config.agentCommandsKept),
      presence: new MemoryPresence(),
    };
  }
  const [{ RedisAgentStore }, { RedisPresence }] = await Promise.all([
    import("./agents/redis.ts"),
    import("./hub/presence/redis.ts"),
  ]);
  return {
    store: new RedisAgentStore({
      url: config.redisUrl,
      prefix: config.redisPrefix,
      commandTtlMs: config.agentCommandTtlMs,
    }),
    presence: new RedisPresence({
      node,
      url: config.redisUrl,
      prefix: config.redisPrefix,
      ttlMs: config.presenceTtlMs,
      clock,
    }),
  };
}

/** What {@linkcode assemble} may be given instead of building it. */
export interface Overrides {
  /** Defaults to the system clock. */
  readonly clock?: Clock;
  /** The bus `config.bus` names (see {@linkcode createBus}); a `MemoryBus` when absent. */
  readonly bus?: Bus;
  /** This node's id; must be the one the bus was built with. */
  readonly node?: string;
  /** The auth seam (see {@linkcode createAuthenticator}); the publish token's when absent. */
  readonly auth?: Authenticator;
  /** The metrics the auth seam counts into, when it was built beforehand. */
  readonly metrics?: Metrics;
  /** The agent store and presence (see {@linkcode createAgentParts}); in memory when absent. */
  readonly agents?: AgentParts;
  /** The hub-wide agent key; `config.agentKey`, else a random one nobody knows. */
  readonly agentKey?: string;
}

/** A request topic over live state or history answers only a principal that reads all. */
function readingAll(handler: RequestHandler): RequestHandler {
  return (client, payload) => {
    if (!readsAll(client.principal)) {
      throw new RequestError(
        "forbidden",
        "reading state and history needs scope subscribe:*, control or admin",
      );
    }
    return handler(client, payload);
  };
}

/**
 * Builds every part of a hub for `config` and the publish token, and the application that
 * serves them: history, live state, the hub, the auth seam, the request topics, the routes.
 * The bus is built beforehand (see {@linkcode createBus}: it may load the Redis client).
 */
export function assemble(config: Config, token: string, overrides: Overrides = {}): App {
  if (overrides.bus === undefined && config.bus !== "memory") {
    throw new Error(`HERALD_BUS=${config.bus} needs the bus from createBus(config, node)`);
  }
  const clock = overrides.clock ?? systemClock;
  const node = overrides.node ?? crypto.randomUUID();
  const bus = overrides.bus ?? new MemoryBus(node);
  const metrics = overrides.metrics ?? new Metrics();
  const history = createHistory(config, clock);
  const state = new LiveState({
    maxEntries: config.stateMaxEntries,
    maxSteps: config.stateMaxSteps,
  });
  const hub = new Hub({
    limits: {
      bufferEvents: config.clientBuffer,
      highWaterBytes: config.socketHighWaterBytes,
      overflow: config.overflow,
      stallTimeoutMs: config.stallTimeoutMs,
      drainPollMs: config.drainPollMs,
    },
    maxSubscriptions: config.maxSubscriptions,
    idempotencyTtlMs: config.idempotencyTtlMs,
    idempotencyMaxKeys: config.idempotencyMaxKeys,
    clock,
    metrics,
    bus,
    history,
    replayLimit: config.replayLimit,
    reorderWaitMs: config.reorderWaitMs,
    reorderMaxPending: config.reorderMaxPending,
    consumers: [state],
    quietMax: config.historySize,
  });
  const sources = { state, history };
  const requests = new Map(
    [...requestHandlers(sources, config.historyReadLimit)].map(([topic, handler]) => [
      topic,
      readingAll(handler),
    ]),
  );
  const agentKey = overrides.agentKey ?? config.agentKey ?? crypto.randomUUID();
  // No log line may hold the agent key either.
  redactSecret(agentKey);
  const agentParts = overrides.agents ?? {
    store: new MemoryAgentStore(config.agentCommandsKept),
    presence: new MemoryPresence(),
  };
  const agents = new AgentRegistry({
    node,
    ...agentParts,
    clock,
    settings: {
      approval: config.agentApproval,
      staleMs: config.agentStaleMs,
      checkMs: config.agentCheckMs,
      pingMs: config.agentPingMs,
      commandTimeoutMs: config.agentCommandTimeoutMs,
      maxWaitMs: config.agentMaxWaitMs,
      stopOnShutdown: config.agentStopOnShutdown,
    },
    publish: (tenant, events) => hub.publish(tenant, events),
    send: (to, message) => bus.send(to, message),
    issueKey: (tenant, agentId) => deriveAgentKey(agentKey, tenant, agentId),
    onRevoked: () => metrics.revokedConnections.incLabel("agent"),
  });
  hub.onMessage((from, message) => agents.message(from, message));
  metrics.countAgentsWith(() => agents.connectedHere);
  for (const [topic, handler] of agentRequests(agents)) requests.set(topic, handler);
  // Test-only request topics (HERALD_DEBUG_HOOKS=1), never on by default.
  if (config.debugHooks) {
    for (const [topic, handler] of debugRequests(node)) requests.set(topic, handler);
  }
  // No log line may ever hold the token, whoever writes it.
  redactSecret(token);
  const agentKeys: AgentKeys = {
    shared: new SecretToken(agentKey),
    // A key issued on registration names its agent and is checked by deriving it again.
    issued: async (key) => {
      const agentId = agentOfKey(key);
      if (agentId === null || !await isIssuedKey(agentKey, DEFAULT_TENANT, key)) return null;
      return { tenant: DEFAULT_TENANT, agentId };
    },
  };
  // HERALD_AUTH=token|jwt: the seam built beforehand (agents present tokens with scope agent).
  const auth: Authenticator = overrides.auth ??
    new PublishTokenAuth(new SecretToken(token), agentKeys);
  // A revoked or narrowed token stops reading now, not when its connections end (security.md).
  auth.onCredentialsChange?.((reauthorize) => {
    const closed = hub.reauthorize(reauthorize) + agents.reauthorize(reauthorize);
    logger("auth").info(
      "Rechecked live connections against the reloaded tokens: closed {closed}",
      { closed },
    );
  });
  const dashboard = config.dashboard ? builtDashboard() : null;
  return createApp({
    config,
    node,
    hub,
    sources,
    metrics,
    clock,
    auth,
    requests,
    agents,
    dashboard,
  });
}

/**
 * Resolves with whether `deno serve` took this module's default export. `import.meta.main` is
 * true under `deno run`, `deno serve` and in every `--parallel` worker alike; but `deno serve`
 * registers the export by calling the global `Deno.serve` right after the module is evaluated,
 * before any timer fires. So watch that call for one timer turn.
 */
function watchForDenoServe(): Promise<boolean> {
  const real = Deno.serve;
  let called = false;
  Deno.serve = ((...args: Parameters<typeof Deno.serve>) => {
    called = true;
    Deno.serve = real;
    return real(...args);
  }) as typeof Deno.serve;
  return new Promise((resolve) =>
    setTimeout(() => {
      Deno.serve = real;
      resolve(called);
    }, 0)
  );
}

async function build(args: readonly string[]): Promise<{ config: Config; app: App }> {
  const env = processEnv();
  let config;
  try {
    config = loadConfig(env, args);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    Deno.exit(2);
  }
  await setUpLogging(config, env);
  config = checkRuntime(config);
  const log = logger("server");
  const { token, source } = await loadPublishToken(config.publishToken, config.dataDir);
  if (source.kind === "file") {
    log.info(
      source.created
        ? "Generated a publish token and stored it in {path}"
        : "Using the publish token stored in {path}",
      { path: source.path },
    );
  } else if (source.kind === "ephemeral") {
    log.warning(
      "Could not store a publish token ({reason}); this run uses a random one nobody knows: set HERALD_PUBLISH_TOKEN",
      { reason: source.reason },
    );
  }
  if (config.auth === "none" && !LOOPBACK_HOSTS.includes(config.hostname)) {
    log.warning(
      "HERALD_AUTH=none on {hostname}: anyone who reaches this port reads every event; set HERALD_AUTH=token or jwt (docs/security.md)",
      { hostname: config.hostname },
    );
  }
  const metrics = new Metrics();
  // `none` is built by assemble, with the agent keys; the other modes here, so a bad tokens
  // file or key stops the start.
  let auth: Authenticator | undefined;
  try {
    if (config.auth !== "none") {
      auth = await createAuthenticator(config, token, systemClock, { metrics });
    }
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    log.error("Cannot start authentication: {reason}", { reason });
    await flushLogs();
    Deno.exit(2);
  }
  const agentKey = await loadPublishToken(config.agentKey, config.dataDir, "agent-key");
  if (agentKey.source.kind === "file") {
    log.info(
      agentKey.source.created
        ? "Generated an agent key and stored it in {path}"
        : "Using the agent key stored in {path}",
      { path: agentKey.source.path },
    );
  } else if (agentKey.source.kind === "ephemeral") {
    log.warning(
      "Could not store an agent key ({reason}); this run uses a random one nobody knows: set HERALD_AGENT_KEY",
      { reason: agentKey.source.reason },
    );
  }
  const node = crypto.randomUUID();
  const bus = await createBus(config, node);
  const agents = await createAgentParts(config, node, systemClock);
  const app = assemble(config, token, {
    bus,
    node,
    agents,
    agentKey: agentKey.token,
    metrics,
    ...(auth === undefined ? {} : { auth }),
  });
  await app.hub.start();
  await app.agents.start();
  return { config, app };
}

/**
 * Runs `shutdown` once on SIGTERM or SIGINT, then exits; exits with 1 if it takes longer than
 * `HERALD_SHUTDOWN_TIMEOUT_MS`.
 */
function onSignals(
  config: Config,
  shutdown: () => Promise<void>,
  beforeExit: () => Promise<void> = () => Promise.resolve(),
): void {
  const log = logger("server");
  let stopping = false;
  const handle = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info("Received {signal}; shutting down", { signal });
    const deadline = setTimeout(() => {
      log.error("Shutdown took longer than {ms} ms; exiting anyway", {
        ms: config.shutdownTimeoutMs,
      });
      flushLogs().finally(() => Deno.exit(1));
    }, config.shutdownTimeoutMs);
    await shutdown();
    log.info("Shut down cleanly");
    await flushLogs();
    await beforeExit();
    clearTimeout(deadline);
    Deno.exit(0);
  };
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(signal, () => void handle(signal));
  }
}

/** The one log line that says where the hub listens (tests and operators read it). */
function logListening(app: App, { hostname, port }: { hostname: string; port: number }): void {
  logger("server").info("Herald listening on {url}", {
    url: `http://${hostname}:${port}`,
    hostname,
    port,
    bus: app.hub.bus.kind,
    history: app.hub.history.kind,
  });
}

/**
 * What SIGTERM runs: closes the clients (draining), stops listening, then closes the agents,
 * the bus and the history.
 */
function shutdownOf(app: App, stopListening: () => Promise<void> = () => Promise.resolve()) {
  return async () => {
    await app.drain();
    await stopListening();
    await app.agents.close();
    await app.hub.bus.close();
    await app.hub.history.close();
  };
}

/** `deno run`: serve on the configured port, through node:http or Deno.serve. */
async function serveItself(config: Config, app: App): Promise<void> {
  if (config.httpServer === "node") {
    const server = await serveNodeHttp(
      config,
      app.handler,
      (address) => logListening(app, address),
    );
    onSignals(config, shutdownOf(app, () => server.shutdown()));
    return;
  }
  const log = logger("server");
  log.info(
    "HERALD_HTTP_SERVER=deno: request heads and idle connections are not timed out; bound them in a proxy in front",
  );
  const server = Deno.serve({
    port: config.port,
    hostname: config.hostname,
    // The handler answers every fault itself; this is the last resort, so that nothing reaches
    // stderr as a stack trace (it would bypass the log format, level and redaction).
    onError: (error) => {
      log.error("Unexpected fault in the HTTP server: {error}", { error });
      return httpError("internal_error", "the server failed to answer this request");
    },
    onListen: (address) => logListening(app, address),
  }, app.handler);
  onSignals(config, shutdownOf(app, () => server.shutdown()));
  await server.finished;
}

/** `deno serve`: this isolate answers through the default export; deno serve listens. */
function serveThroughDenoServe(config: Config, app: App): void {
  const isolates = new IsolateRoll(app.node, parallelIsolates());
  const log = logger("server");
  log.info("Herald isolate {node} ready under deno serve", {
    node: app.node,
    bus: app.hub.bus.kind,
    history: app.hub.history.kind,
  });
  log.info(
    "Under deno serve, Deno.serve owns the listener: request heads and idle connections are not timed out; bound them in a proxy in front",
  );
  // The first isolate to exit ends the process: exit once every isolate finished.
  onSignals(config, shutdownOf(app), () => isolates.stopped());
}

const entry = import.meta.main ? entryOf(Deno.args) : null;
if (entry?.run === "cli") {
  // Imported only here, so the hub never loads the CLI (a literal: deno compile embeds it).
  const cli = await import("./cli/main.ts");
  Deno.exit(await cli.main(entry.args));
}

/** Under `deno serve`, every isolate's handler; `deno run` serves it itself. */
const built = entry?.run === "hub" ? await build(entry.args) : null;
export default built === null ? {} : { fetch: built.app.handler };

if (built !== null) {
  const { config, app } = built;
  watchForDenoServe().then((served) =>
    served ? serveThroughDenoServe(config, app) : serveItself(config, app)
  );
}
