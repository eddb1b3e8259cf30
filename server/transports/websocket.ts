/**
 * `/ws`: checks the origin and query, upgrades with `Deno.upgradeWebSocket`, and connects the
 * socket to the hub as a transport plus a session for its inbound messages.
 * @module
 */

import { onSocketEnd, upgradeWebSocket } from "../node_http.ts";
import { DISCONNECT } from "../../events/codes.ts";
import type { Clock } from "../../hub/clock.ts";
import type { Hub } from "../../hub/hub.ts";
import type { Metrics } from "../../hub/metrics.ts";
import type { Principal } from "../../hub/principal.ts";
import {
  type PublishAllowance,
  type RequestHandler,
  Session,
  type SessionIdentity,
  type SessionLimits,
} from "../../hub/session.ts";
import { bearerProtocol } from "../auth/credentials.ts";
import type { Outgoing, Transport } from "../../hub/transport.ts";
import type { Config } from "../config.ts";
import { logger } from "../log.ts";
import { httpError } from "../responses.ts";
import type { Authenticator } from "../auth.ts";
import { admitStream, subscribeInitial } from "./_initial.ts";

const log = logger("websocket");

/** What the WebSocket endpoint needs. */
export interface WebSocketDeps {
  readonly hub: Hub;
  readonly metrics: Metrics;
  readonly clock: Clock;
  readonly config: Pick<
    Config,
    "allowedOrigins" | "pingIntervalSeconds" | "stallTimeoutMs" | "drainPollMs" | "maxSubscriptions"
  >;
  readonly sessionLimits: SessionLimits;
  readonly requests: ReadonlyMap<string, RequestHandler>;
  /** Decides who the connection acts as (and whether it may publish). */
  readonly auth: Authenticator;
  /** Takes a connection slot (returns its release) or answers why not; none: no cap. */
  readonly admit?: (principal: Principal) => (() => void) | Response;
  /** Expiry and `refresh` (token and jwt modes); none: `refresh` is unknown, nothing expires. */
  readonly identity?: SessionIdentity;
  /** Publish requests per credential. */
  readonly publishAllowance?: PublishAllowance;
}

/** Adapts a Deno WebSocket to the hub's transport (a class: no closures per connection). */
export class SocketTransport implements Transport {
  readonly #socket: WebSocket;
  readonly #lingerMs: number;
  readonly #pollMs: number;

  /** `lingerMs`: how long a close waits for the frames already buffered to be written. */
  constructor(socket: WebSocket, lingerMs: number, pollMs: number) {
    this.#socket = socket;
    this.#lingerMs = lingerMs;
    this.#pollMs = pollMs;
  }

  send(outgoing: Outgoing): void {
    this.#socket.send(outgoing.frame);
  }

  get bufferedAmount(): number {
    return this.#socket.bufferedAmount;
  }

  /**
   * Sends the close frame once the frames buffered before it are written (or after `lingerMs`).
   * Deno tears a closing server socket down as soon as a message arrives, so a close sent
   * behind a full buffer to a client that keeps sending never reached it: the client read what
   * was buffered and then saw the connection reset instead of the close code (4008). A
   * shutdown (1001) does not wait: it has its own deadline.
   */
  close(code: number, reason: string): void {
    const socket = this.#socket;
    if (
      code === DISCONNECT.shutdown.code || socket.readyState !== WebSocket.OPEN ||
      socket.bufferedAmount === 0
    ) {
      socket.close(code, reason);
      return;
    }
    const deadline = Date.now() + this.#lingerMs;
    const timer = setInterval(() => {
      if (socket.readyState !== WebSocket.OPEN) {
        clearInterval(timer);
      } else if (socket.bufferedAmount === 0 || Date.now() >= deadline) {
        clearInterval(timer);
        socket.close(code, reason);
      }
    }, this.#pollMs);
  }
}

/** Whether a comma-separated header holds `token` (case-insensitive). */
function headerHas(value: string | null, token: string): boolean {
  return value !== null &&
    value.split(",").some((part) => part.trim().toLowerCase() === token);
}

/**
 * Why an upgrade request is not a valid WebSocket handshake (RFC 6455 4.2.1), or null. Checked
 * before `Deno.upgradeWebSocket`, which throws on these.
 */
function handshakeProblem(headers: Headers): string | null {
  if (!headerHas(headers.get("connection"), "upgrade")) return "Connection must include Upgrade";
  const key = headers.get("sec-websocket-key");
  if (key === null || !/^[A-Za-z0-9+/]{22}==$/.test(key.trim())) {
    return "Sec-WebSocket-Key must be 16 bytes in base64";
  }
  if (headers.get("sec-websocket-version")?.trim() !== "13") {
    return "Sec-WebSocket-Version must be 13";
  }
  return null;
}

/** Handles a request for `/ws`. */
export async function handleWebSocket(request: Request, deps: WebSocketDeps): Promise<Response> {
  if (!headerHas(request.headers.get("upgrade"), "websocket")) {
    return httpError("upgrade_required", "/ws speaks WebSocket only", {}, { upgrade: "websocket" });
  }
  const problem = handshakeProblem(request.headers);
  if (problem !== null) {
    return httpError("bad_request", `not a WebSocket handshake: ${problem}`, {}, {
      "sec-websocket-version": "13",
    });
  }
  const admitted = await admitStream(request, deps.config, deps.auth, "connect", deps.metrics);
  if (admitted instanceof Response) return admitted;
  const { initial, principal } = admitted;
  const release = deps.admit?.(principal) ?? (() => {});
  if (release instanceof Response) return release;
  // A browser offered its token as the subprotocol `bearer.<token>`: the handshake must name
  // the protocol accepted, or the browser fails the connection.
  const protocol = bearerProtocol(request);
  let upgraded: { socket: WebSocket; response: Response };
  try {
    // Deno pings after idleTimeout/2 of silence and closes at idleTimeout without a pong.
    upgraded = upgradeWebSocket(request, {
      idleTimeout: deps.config.pingIntervalSeconds * 2,
      ...(protocol === null ? {} : { protocol }),
    });
  } catch (error) {
    release();
    log.debug("Refused an upgrade: {error}", { error });
    return httpError("bad_request", "not a WebSocket handshake");
  }
  const { socket, response } = upgraded;
  // The handlers below keep what they use for as long as the socket lives, so they name only
  // that: not `deps` (its admit closure keeps the routing of this request, URL and all) and
  // not the query's subscriptions once they are made.
  const { hub, config } = deps;
  const sessionDeps = {
    limits: deps.sessionLimits,
    clock: deps.clock,
    metrics: deps.metrics,
    requests: deps.requests,
    ...(deps.identity === undefined ? {} : { identity: deps.identity }),
    ...(deps.publishAllowance === undefined ? {} : { publishAllowance: deps.publishAllowance }),
  };
  let pending: typeof initial | null = initial;
  let session: Session | null = null;
  socket.onopen = () => {
    const client = hub.connect(
      new SocketTransport(socket, config.stallTimeoutMs, config.drainPollMs),
      principal,
      "websocket",
    );
    session = new Session(hub, client, sessionDeps);
    subscribeInitial(hub, client, pending!);
    pending = null;
  };
  socket.onmessage = (event) => {
    if (session === null) return;
    // An exception escaping an event handler would end the process and every connection.
    try {
      if (typeof event.data === "string") session.receiveText(event.data);
      else session.receiveBinary();
    } catch (error) {
      log.error("Failed to handle a message: {error}", { error });
    }
  };
  onSocketEnd(socket, () => {
    release();
    session?.close();
    session?.client.transportClosed();
    session = null;
    pending = null;
  });
  return response;
}
