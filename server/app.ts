/**
 * The HTTP application: routes requests to the WebSocket endpoint, the publish API and the
 * operational endpoints. Built from a config; `main.ts` serves it.
 * @module
 */

import { DISCONNECT } from "../events/codes.ts";
import { type Bus, MemoryBus } from "../hub/bus.ts";
import { type Clock, systemClock } from "../hub/clock.ts";
import { Hub } from "../hub/hub.ts";
import type { History } from "../hub/history.ts";
import { KvHistory } from "../hub/history_kv.ts";
import { MemoryHistory } from "../hub/history_memory.ts";
import { RedisHistory } from "../hub/history_redis.ts";
import { Metrics } from "../hub/metrics.ts";
import { RequestError } from "../hub/session.ts";
import { LiveState } from "../hub/state.ts";
import type { Config } from "./config.ts";
import { debugRequests } from "./debug.ts";
import { allowedHosts, clientIp, ConnectionLimiter, hostAllowed } from "./edge.ts";
import { logger, redactSecret } from "./log.ts";
import { handlePublish } from "./publish.ts";
import { SecretToken } from "./token.ts";
import {
  appQuery,
  appsQuery,
  historyQuery,
  paramsOf,
  requestHandlers,
  stateQuery,
} from "./queries.ts";
import { httpError, json } from "./responses.ts";
import { handleSse } from "./sse.ts";
import { handleWebSocket } from "./websocket.ts";

/** The single tenant every connection and event belongs to until auth lands. */
export const DEFAULT_TENANT = "default";

/** A built application: its handler and the hub behind it. */
export interface App {
  /** This node's id: the bus origin of the events published here. */
  readonly node: string;
  readonly hub: Hub;
  readonly metrics: Metrics;
  /** Never throws: an unexpected fault answers 500 `internal_error` and logs one line. */
  readonly handler: (
    request: Request,
    info?: Deno.ServeHandlerInfo,
  ) => Response | Promise<Response>;
  /** Stops answering `/ready` with 200 and closes every client with 1001. */
  drain(): void;
}

/** Builds the history `HERALD_HISTORY` names. */
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

const APP_ROUTE = new URLPattern({ pathname: "/apps/:appId" });

/** Parts built outside `createApp` (the bus needs async setup: see `createBus`). */
export interface AppParts {
  /** The bus `config.bus` names; defaults to a `MemoryBus`, only valid with `HERALD_BUS=memory`. */
  readonly bus?: Bus;
  /** This node's id; must be the one the bus was built with. */
  readonly node?: string;
}

/** Builds the application for a config and publish token. */
export function createApp(
  config: Config,
  token: string,
  clock: Clock = systemClock,
  parts: AppParts = {},
): App {
  if (parts.bus === undefined && config.bus !== "memory") {
    throw new Error(`HERALD_BUS=${config.bus} needs the bus from createBus(config, node)`);
  }
  redactSecret(token);
  const publishToken = new SecretToken(token);
  const node = parts.node ?? crypto.randomUUID();
  const bus = parts.bus ?? new MemoryBus();
  const metrics = new Metrics();
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
    history: createHistory(config, clock),
    replayLimit: config.replayLimit,
    reorderWaitMs: config.reorderWaitMs,
    reorderMaxPending: config.reorderMaxPending,
    state: new LiveState({ maxEntries: config.stateMaxEntries, maxSteps: config.stateMaxSteps }),
  });
  const requests = requestHandlers(hub, config.historyReadLimit);
  // Test-only request topics (HERALD_DEBUG_HOOKS=1), never on by default.
  if (config.debugHooks) {
    for (const [topic, handler] of debugRequests(node)) requests.set(topic, handler);
  }
  const sessionLimits = {
    maxMessageBytes: config.maxMessageBytes,
    messageRate: config.messageRate,
    messageBurst: config.messageBurst,
    strictEvents: config.strictEvents,
    maxEventDepth: config.maxEventDepth,
  };
  let draining = false;
  const hosts = allowedHosts(config);
  const connections = new ConnectionLimiter(config.maxConnections, config.maxConnectionsPerIp);

  /** Takes a long-lived connection slot for the client, or answers why not. */
  const admit = (info: Deno.ServeHandlerInfo | undefined): (() => void) | Response => {
    const release = connections.acquire(clientIp(info));
    if (release === "total") {
      return httpError("server_busy", "too many connections; try again later", {}, {
        "retry-after": "5",
      });
    }
    if (release === "per_ip") {
      return httpError("too_many_connections", "too many connections from this address");
    }
    return release;
  };

  const route = (
    request: Request,
    info: Deno.ServeHandlerInfo | undefined,
  ): Response | Promise<Response> => {
    let url: URL;
    try {
      url = new URL(request.url);
    } catch {
      // An invalid Host (`Host: a b`) makes the request's URL unparseable.
      return httpError("bad_request", "the Host header is not a valid host");
    }
    if (!hostAllowed(url, hosts)) {
      return httpError(
        "host_not_allowed",
        "this host name is not served; see HERALD_ALLOWED_HOSTS",
      );
    }
    const { pathname } = url;
    const method = request.method;
    const tenant = DEFAULT_TENANT;
    switch (pathname) {
      case "/ws":
        if (method !== "GET") return methodNotAllowed("GET");
        return handleWebSocket(request, {
          hub,
          metrics,
          clock,
          config,
          sessionLimits,
          requests,
          publishToken,
          tenant: DEFAULT_TENANT,
          admit: () => admit(info),
        });
      case "/events":
        if (method !== "POST") return methodNotAllowed("POST");
        return handlePublish(request, {
          hub,
          metrics,
          config,
          publishToken,
          tenant: DEFAULT_TENANT,
        });
      case "/events/stream":
        if (method !== "GET") return methodNotAllowed("GET");
        return streamEvents(request, info);
      case "/state":
        if (method !== "GET") return methodNotAllowed("GET");
        return answer(() => stateQuery(hub, tenant, paramsOf(url)));
      case "/apps":
        if (method !== "GET") return methodNotAllowed("GET");
        return answer(() => appsQuery(hub, tenant));
      case "/history":
        if (method !== "GET") return methodNotAllowed("GET");
        return answer(() => historyQuery(hub, tenant, paramsOf(url), config.historyReadLimit));
      case "/health":
        return json({ status: "ok" });
      case "/ready":
        if (draining) return json({ status: "draining" }, 503);
        if (!hub.bus.ready) return json({ status: "bus_unavailable", bus: hub.bus.kind }, 503);
        return json({ status: "ready", bus: hub.bus.kind });
      case "/metrics":
        return new Response(metrics.render(), {
          headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
        });
      default: {
        const appRoute = APP_ROUTE.exec(url);
        if (appRoute !== null) {
          if (method !== "GET") return methodNotAllowed("GET");
          let appId: string;
          try {
            appId = decodeURIComponent(appRoute.pathname.groups.appId!);
          } catch {
            return httpError("bad_request", "the app id is not valid percent-encoded UTF-8");
          }
          return answer(() => appQuery(hub, tenant, appId));
        }
        return httpError("not_found", `no route for ${pathname}`);
      }
    }
  };

  /** `/events/stream` holds a connection slot until its response ends. */
  const streamEvents = (request: Request, info: Deno.ServeHandlerInfo | undefined): Response => {
    const release = admit(info);
    if (release instanceof Response) return release;
    let response: Response;
    try {
      response = handleSse(request, { hub, config, tenant: DEFAULT_TENANT });
    } catch (error) {
      release();
      throw error;
    }
    if (response.status !== 200 || info === undefined) release();
    else info.completed.then(release, release);
    return response;
  };

  /** The one answer to a fault no route expected: one log line, never the query (tokens). */
  const fault = (request: Request, error: unknown): Response => {
    log.error("Unexpected fault answering {method} {path}: {error}", {
      method: request.method,
      path: pathOf(request),
      error,
    });
    return httpError("internal_error", "the server failed to answer this request");
  };

  const handler = (
    request: Request,
    info?: Deno.ServeHandlerInfo,
  ): Response | Promise<Response> => {
    try {
      const response = route(request, info);
      return response instanceof Promise
        ? response.catch((error) => fault(request, error))
        : response;
    } catch (error) {
      return fault(request, error);
    }
  };

  return {
    node,
    hub,
    metrics,
    handler,
    drain() {
      draining = true;
      hub.closeAll(DISCONNECT.shutdown);
    },
  };
}

const log = logger("http");

/** The request's path without its query (which may hold a token), or "?" when unreadable. */
function pathOf(request: Request): string {
  try {
    return new URL(request.url).pathname;
  } catch {
    return "?";
  }
}

/** Answers a query as JSON, or its `RequestError` as a 400/404. */
async function answer(query: () => unknown): Promise<Response> {
  try {
    return json(await query());
  } catch (error) {
    if (!(error instanceof RequestError)) throw error;
    return httpError(error.code === "not_found" ? "not_found" : "bad_request", error.message);
  }
}

function methodNotAllowed(allow: string): Response {
  return httpError("method_not_allowed", `use ${allow}`, {}, { allow });
}
