/**
 * The HTTP application: routes requests to the WebSocket endpoint, the publish API, the SSE
 * stream, the REST reads and the operational endpoints. It receives its parts (the hub, the auth
 * seam, the request topics) from the composition root, `main.ts`; it does not choose them.
 * @module
 */

import { DISCONNECT } from "../events/codes.ts";
import type { Clock } from "../hub/clock.ts";
import type { Hub } from "../hub/hub.ts";
import type { Metrics } from "../hub/metrics.ts";
import type { RequestHandler } from "../hub/session.ts";
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
  readonly handler: (request: Request) => Response | Promise<Response>;
  /** Stops answering `/ready` with 200 and closes every client with 1001. */
  drain(): void;
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
}

const APP_ROUTE = new URLPattern({ pathname: "/apps/:appId" });

/** Builds the application from its parts. */
export function createApp(parts: AppParts): App {
  const { config, hub, sources, metrics, clock, auth, requests, node } = parts;
  const sessionLimits = {
    maxMessageBytes: config.maxMessageBytes,
    messageRate: config.messageRate,
    messageBurst: config.messageBurst,
    strictEvents: config.strictEvents,
  };
  let draining = false;

  /** Authenticates a read, then answers `query` for the principal as JSON. */
  const read = async (
    request: Request,
    query: (principal: Principal) => unknown,
  ): Promise<Response> => {
    const authentication = await auth.authenticate(request, "read" satisfies Access);
    if (!authentication.ok) return refuse(authentication.refusal);
    return answer(() => query(authentication.principal));
  };

  const handler = (request: Request): Response | Promise<Response> => {
    const url = new URL(request.url);
    const { pathname } = url;
    const method = request.method;
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
          auth,
        });
      case "/events":
        if (method !== "POST") return methodNotAllowed("POST");
        return handlePublish(request, { hub, metrics, config, auth });
      case "/events/stream":
        if (method !== "GET") return methodNotAllowed("GET");
        return handleSse(request, { hub, config, auth });
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
        const appRoute = APP_ROUTE.exec(url);
        if (appRoute !== null) {
          if (method !== "GET") return methodNotAllowed("GET");
          const appId = decodeURIComponent(appRoute.pathname.groups.appId!);
          return read(request, (principal) => appQuery(sources, principal.tenant, appId));
        }
        return httpError("not_found", `no route for ${pathname}`);
      }
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
