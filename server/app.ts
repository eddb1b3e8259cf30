/**
 * The HTTP application: routes requests to the WebSocket endpoint, the publish API, the SSE
 * stream, the REST reads and the operational endpoints. It receives its parts (the hub, the auth
 * seam, the request topics) from the composition root, `main.ts`; it does not choose them.
 * @module
 */

import type { AgentRegistry } from "../agents/registry.ts";
import { DISCONNECT } from "../events/codes.ts";
import type { Clock } from "../hub/clock.ts";
import type { Hub } from "../hub/hub.ts";
import type { Metrics } from "../hub/metrics.ts";
import { type Principal as Who, readsAll } from "../hub/principal.ts";
import { KeyedBuckets } from "../hub/rate_limit.ts";
import type { RequestHandler, SessionIdentity } from "../hub/session.ts";
import { allowedHosts, clientIp, ConnectionLimiter, hostAllowed } from "./edge.ts";
import { logger } from "./log.ts";
import {
  appQuery,
  appsQuery,
  historyQuery,
  paramsOf,
  type Sources,
  stateQuery,
} from "../state/queries.ts";
import type { Access, Authenticator, Principal } from "./auth.ts";
import type { Config } from "./config.ts";
import { agentRoutes } from "./agents.ts";
import { Dashboard } from "./dashboard.ts";
import { answerError, refuse } from "./errors.ts";
import { handlePublish } from "./publish.ts";
import { httpError, json } from "./responses.ts";
import { handleSse } from "./transports/sse.ts";
import { handleWebSocket } from "./transports/websocket.ts";

/** A built application: its handler and the hub behind it. */
export interface App {
  /** This node's id: the bus origin of the events published here. */
  readonly node: string;
  readonly hub: Hub;
  readonly metrics: Metrics;
  /** The agent registry (started and closed by the composition root). */
  readonly agents: AgentRegistry;
  /** Never throws: an unexpected fault answers 500 `internal_error` and logs one line. */
  readonly handler: (
    request: Request,
    info?: Deno.ServeHandlerInfo,
  ) => Response | Promise<Response>;
  /**
   * Stops answering `/ready` with 200, closes every client and agent with 1001, and resolves once
   * every connection has ended (its close frame went out and the client answered, or it went away), or
   * after half of `HERALD_SHUTDOWN_TIMEOUT_MS`: exiting earlier could drop a close frame still
   * queued, and the client would see a reset instead of 1001.
   */
  drain(): Promise<void>;
}

/** What the application is built from. */
export interface AppParts {
  readonly config: Config;
  /** This node's id; the one the bus was built with. */
  readonly node: string;
  readonly hub: Hub;
  /** Live state and history, for the REST reads. */
  readonly sources: Sources;
  readonly metrics: Metrics;
  readonly clock: Clock;
  /** Turns every request into a principal or a refusal. */
  readonly auth: Authenticator;
  /** The WebSocket `request` topics. */
  readonly requests: ReadonlyMap<string, RequestHandler>;
  readonly agents: AgentRegistry;
  /** The dashboard served at `/`; none when absent or null. */
  readonly dashboard?: Dashboard | null;
}

/** How often a drain looks whether every connection has ended. */
const DRAIN_POLL_MS = 10;

const APP_ROUTE = new URLPattern({ pathname: "/apps/:appId" });

/** Builds the application from its parts. */
export function createApp(parts: AppParts): App {
  const { config, hub, sources, metrics, clock, auth, requests, node, agents } = parts;
  const dashboard = parts.dashboard ?? null;
  const sessionLimits = {
    maxMessageBytes: config.maxMessageBytes,
    messageRate: config.messageRate,
    messageBurst: config.messageBurst,
    strictEvents: config.strictEvents,
    maxEventDepth: config.maxEventDepth,
  };
  let draining = false;
  const hosts = allowedHosts(config);
  const connections = new ConnectionLimiter(
    config.maxConnections,
    config.maxConnectionsPerIp,
    config.maxConnectionsPerTenant,
  );
  const publishLimits = new KeyedBuckets(config.publishRate, config.publishBurst, clock);
  const upgradeLimits = new KeyedBuckets(config.upgradeRate, config.upgradeBurst, clock);
  const publishAllowance = (who: Who): number | null => {
    const wait = publishLimits.take(who.credential ?? who.subject);
    if (wait !== null) metrics.limitRefusals.incLabel("publish_rate");
    return wait;
  };
  // `refresh` on a WebSocket checks the new token exactly as an upgrade would.
  const identity: SessionIdentity | undefined = config.auth === "none" ? undefined : {
    expiryWarningMs: config.expiryWarningSeconds * 1000,
    refresh: async (token) => {
      const authentication = await auth.authenticate(
        new Request("http://herald/ws", { headers: { authorization: `Bearer ${token}` } }),
        "connect",
      );
      return authentication.ok ? authentication.principal : authentication.refusal.message;
    },
  };
  const ipOf = (request: Request, info: Deno.ServeHandlerInfo | undefined) =>
    clientIp(info, request, config.trustedProxies);
  const refused = (refusal: Parameters<typeof refuse>[0]): Response => {
    metrics.authRefusals.incLabel(refusal.code);
    return refuse(refusal);
  };

  /** Authenticates a read, then answers `query` for the principal as JSON. */
  const read = async (
    request: Request,
    query: (principal: Principal) => unknown,
  ): Promise<Response> => {
    const authentication = await auth.authenticate(request, "read" satisfies Access);
    if (!authentication.ok) return refused(authentication.refusal);
    if (!readsAll(authentication.principal)) {
      return refused({
        code: "forbidden",
        message: "reading state and history needs scope subscribe:*, control or admin",
      });
    }
    return answer(() => query(authentication.principal));
  };

  /** Takes a long-lived connection slot for the client, or answers why not. */
  const admit = (
    request: Request,
    info: Deno.ServeHandlerInfo | undefined,
    who?: Who,
  ): (() => void) | Response => {
    // Agent connections are admitted before their key is read: counted per address and in total.
    const release = connections.acquire(ipOf(request, info), who?.tenant ?? "");
    if (typeof release === "function") return release;
    metrics.limitRefusals.incLabel(`connections_${release}`);
    if (release === "total") {
      return httpError("server_busy", "too many connections; try again later", {}, {
        "retry-after": "5",
      });
    }
    if (release === "per_ip") {
      return httpError("too_many_connections", "too many connections from this address");
    }
    return httpError(
      "too_many_connections",
      "too many connections for this tenant (HERALD_MAX_CONNECTIONS_PER_TENANT)",
    );
  };

  /** Connection attempts per client IP, before any other work: null when allowed. */
  const attempt = (request: Request, info: Deno.ServeHandlerInfo | undefined): Response | null => {
    const wait = upgradeLimits.take(ipOf(request, info));
    if (wait === null) return null;
    metrics.limitRefusals.incLabel("upgrade_rate");
    return httpError("rate_limited", "too many connection attempts from this address", {}, {
      "retry-after": String(wait),
    });
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
    switch (pathname) {
      case "/ws": {
        if (method !== "GET") return methodNotAllowed("GET");
        const tooFast = attempt(request, info);
        if (tooFast !== null) return tooFast;
        return handleWebSocket(request, {
          hub,
          metrics,
          clock,
          config,
          sessionLimits,
          requests,
          auth,
          admit: (who) => admit(request, info, who),
          publishAllowance,
          ...(identity === undefined ? {} : { identity }),
        });
      }
      case "/events":
        if (method !== "POST") return methodNotAllowed("POST");
        return handlePublish(request, { hub, metrics, config, auth, publishAllowance });
      case "/events/stream": {
        if (method !== "GET") return methodNotAllowed("GET");
        const tooFast = attempt(request, info);
        if (tooFast !== null) return tooFast;
        return streamEvents(request, info);
      }
      case "/state":
        if (method !== "GET") return methodNotAllowed("GET");
        return read(request, (principal) => stateQuery(sources, principal.tenant, paramsOf(url)));
      case "/apps":
        if (method !== "GET") return methodNotAllowed("GET");
        return read(request, (principal) => appsQuery(sources, principal.tenant));
      case "/history":
        if (method !== "GET") return methodNotAllowed("GET");
        return read(
          request,
          (principal) =>
            historyQuery(sources, principal.tenant, paramsOf(url), config.historyReadLimit),
        );
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
        const agentAnswer = agentRoutes(request, url, {
          agents,
          auth,
          config,
          admit: () => admit(request, info),
        });
        if (agentAnswer !== null) return agentAnswer;
        if (dashboard !== null && Dashboard.owns(pathname)) {
          if (method !== "GET" && method !== "HEAD") return methodNotAllowed("GET, HEAD");
          const page = dashboard.answer(request);
          if (page !== null) return page;
        }
        const appRoute = APP_ROUTE.exec(url);
        if (appRoute !== null) {
          if (method !== "GET") return methodNotAllowed("GET");
          let appId: string;
          try {
            appId = decodeURIComponent(appRoute.pathname.groups.appId!);
          } catch {
            return httpError("bad_request", "the app id is not valid percent-encoded UTF-8");
          }
          return read(request, (principal) => appQuery(sources, principal.tenant, appId));
        }
        return httpError("not_found", `no route for ${pathname}`);
      }
    }
  };

  /** `/events/stream` holds a connection slot until its response ends. */
  const streamEvents = async (
    request: Request,
    info: Deno.ServeHandlerInfo | undefined,
  ): Promise<Response> => {
    let release = () => {};
    const response = await handleSse(request, {
      hub,
      config,
      auth,
      clock,
      admit: (who) => {
        const taken = admit(request, info, who);
        if (typeof taken === "function") release = taken;
        return taken;
      },
    });
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
    agents,
    handler,
    async drain() {
      draining = true;
      agents.drain();
      hub.closeAll(DISCONNECT.shutdown);
      const deadline = clock.now() + config.shutdownTimeoutMs / 2;
      while (connections.total > 0 && clock.now() < deadline) {
        await clock.sleep(DRAIN_POLL_MS);
      }
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

/** Answers a query as JSON, or its domain error with the status the error table gives it. */
async function answer(query: () => unknown): Promise<Response> {
  try {
    return json(await query());
  } catch (error) {
    return answerError(error);
  }
}

function methodNotAllowed(allow: string): Response {
  return httpError("method_not_allowed", `use ${allow}`, {}, { allow });
}
