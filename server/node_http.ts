/**
 * Serves the app through `node:http` instead of `Deno.serve` (`HERALD_HTTP_SERVER=node`, the
 * default under `deno run`), for what `Deno.serve` cannot bound: it runs hyper without a timer,
 * so a connection that never completes its request head (slow loris, a socket that sends
 * nothing) is held forever. Node's server closes such a connection after
 * `HERALD_HEADER_TIMEOUT_MS` with 408, a whole request after the header and body timeouts, an
 * idle keep-alive connection after `HERALD_KEEP_ALIVE_TIMEOUT_MS`, and answers a head larger
 * than `HERALD_MAX_HEADER_BYTES` with 431.
 *
 * Only request heads and HTTP bodies pass through JavaScript here. A WebSocket upgrade hands the
 * TCP socket to `Deno.upgradeWebSocket({ socket, head })`, so frames are read and written by
 * the runtime exactly as under `Deno.serve`; transports call {@linkcode upgradeWebSocket},
 * which finds the socket of a request this front made.
 * @module
 */

import http from "node:http";
import type { Socket } from "node:net";
import { HTTP_ERRORS, httpError, type HttpErrorCode } from "./responses.ts";
import { logger } from "./log.ts";

/** The node server's settings, from the config. */
export interface NodeHttpSettings {
  readonly port: number;
  readonly hostname: string;
  readonly headerTimeoutMs: number;
  /** The header timeout plus the body timeout bounds a whole request. */
  readonly bodyTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxHeaderBytes: number;
}

/** What `Deno.serve` hands a handler; `completed` settles when the response has ended. */
type Handler = (request: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response>;

/** A running node front: its address, and how to stop it. */
export interface NodeHttpServer {
  readonly port: number;
  /** Stops accepting and closes every HTTP connection (WebSockets are the app's to close). */
  shutdown(): Promise<void>;
}

/** The raw socket of each upgrade request this front built, until a transport upgrades it. */
const upgradeSockets = new WeakMap<Request, { socket: Socket; head: Uint8Array }>();

/**
 * `Deno.upgradeWebSocket`, on the TCP socket of the node front when `request` came through it
 * (the runtime then writes the 101 itself), as `Deno.serve` does otherwise.
 */
export function upgradeWebSocket(
  request: Request,
  options: Deno.UpgradeWebSocketOptions = {},
): Deno.WebSocketUpgrade {
  const raw = upgradeSockets.get(request);
  if (raw === undefined) return Deno.upgradeWebSocket(request, options);
  const handle = (raw.socket as unknown as { _handle: NodeHandle | null })._handle;
  const upgraded = Deno.upgradeWebSocket(request, {
    ...options,
    socket: raw.socket,
    head: raw.head,
  });
  // The runtime took the connection but not node's handle of it: left open, the handle (and
  // its socket) would stay reachable from a global reference forever, about 2.4 KiB of heap per
  // WebSocket ever served (measured: bench/layers.ts, docs/operations.md).
  if (handle !== null) {
    upgraded.socket.addEventListener("close", () => closeQuietly(handle), { once: true });
  }
  return upgraded;
}

/**
 * Runs `ended` once when `socket` closes or fails, then takes every handler off the socket. A
 * connection that ends abruptly (reset, invalid UTF-8) stays reachable from the runtime's
 * heartbeat timer until that timer next fires (up to `HERALD_PING_INTERVAL`); detached, it no
 * longer keeps what its handlers reach (session, client, queue) alive with it.
 */
export function onSocketEnd(socket: WebSocket, ended: () => void): void {
  let done = false;
  const end = () => {
    if (done) return;
    done = true;
    socket.onopen = null;
    socket.onmessage = null;
    socket.onclose = null;
    socket.onerror = null;
    ended();
  };
  socket.onclose = end;
  socket.onerror = end;
}

/** The native TCP handle behind a node socket. */
interface NodeHandle {
  close(): void;
}

/** Closes node's handle of a connection the runtime already closed: errors are expected. */
function closeQuietly(handle: NodeHandle): void {
  try {
    handle.close();
  } catch {
    // The connection itself is gone; only the handle's own state was left to free.
  }
}

const log = logger("http");

/** How often node checks connections against the header and request timeouts. */
const TIMEOUT_CHECK_MS = 1_000;

/** Starts the node front for `handler`; resolves once it listens. */
export function serveNodeHttp(
  settings: NodeHttpSettings,
  handler: Handler,
  onListen: (address: { hostname: string; port: number }) => void,
): Promise<NodeHttpServer> {
  const server = http.createServer({
    headersTimeout: settings.headerTimeoutMs,
    requestTimeout: settings.headerTimeoutMs + settings.bodyTimeoutMs,
    keepAliveTimeout: settings.keepAliveTimeoutMs,
    maxHeaderSize: settings.maxHeaderBytes,
    connectionsCheckingInterval: Math.min(TIMEOUT_CHECK_MS, settings.headerTimeoutMs),
  });
  server.on("request", (incoming, outgoing) => {
    serveRequest(handler, incoming, outgoing).catch((error) => {
      log.error("Unexpected fault in the HTTP server: {error}", { error });
      outgoing.destroy();
    });
  });
  server.on("upgrade", (incoming, socket: Socket, head: Uint8Array) => {
    serveUpgrade(handler, incoming, socket, head).catch((error) => {
      log.error("Unexpected fault in the HTTP server: {error}", { error });
      socket.destroy();
    });
  });
  server.on("clientError", answerClientError);
  const hostname = settings.hostname.replace(/^\[(.*)\]$/, "$1");
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(settings.port, hostname, () => {
      server.off("error", reject);
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : settings.port;
      onListen({ hostname: settings.hostname, port });
      resolve({
        port,
        shutdown: () => {
          // Stops listening at once. Its callback waits for every connection node counts,
          // and node still counts the sockets it handed to WebSockets, which never tell it they
          // closed (the drain closed them): so do not wait for it.
          server.close();
          server.closeAllConnections();
          return Promise.resolve();
        },
      });
    });
  });
}

/** The handler's view of the connection: the peer's address, and when the response ended. */
function infoOf(socket: Socket, completed: Promise<void>): Deno.ServeHandlerInfo {
  return {
    remoteAddr: {
      transport: "tcp",
      hostname: socket.remoteAddress ?? "",
      port: socket.remotePort ?? 0,
    },
    completed,
  };
}

/** The fetch `Request` for a node request, or an error answer when its head cannot be one. */
function toRequest(
  incoming: http.IncomingMessage,
  signal: AbortSignal | null,
  withBody: boolean,
): Request | Response {
  const headers = new Headers();
  const raw = incoming.rawHeaders;
  let url: URL;
  try {
    for (let index = 0; index + 1 < raw.length; index += 2) {
      headers.append(raw[index]!, raw[index + 1]!);
    }
    url = new URL(incoming.url ?? "/", `http://${headers.get("host") ?? "localhost"}`);
  } catch {
    // `Host: a b`, or a header value fetch refuses: never echoed (it may hold a token).
    return httpError("bad_request", "the request line or a header is not valid HTTP");
  }
  const method = incoming.method ?? "GET";
  const hasBody = withBody && method !== "GET" && method !== "HEAD";
  return new Request(url, {
    method,
    headers,
    signal,
    ...(hasBody ? { body: bodyOf(incoming), duplex: "half" } : {}),
  } as RequestInit);
}

/**
 * The request body as a stream that reads from the socket only as fast as the handler reads
 * (node pauses the socket in between). What the handler leaves unread stays in the kernel:
 * {@linkcode serveRequest} then closes the connection.
 */
function bodyOf(incoming: http.IncomingMessage): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      incoming.on("data", (chunk: Uint8Array) => {
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if ((controller.desiredSize ?? 0) <= 0) incoming.pause();
      });
      incoming.once("end", () => controller.close());
      incoming.once("error", (error) => controller.error(error));
    },
    pull() {
      incoming.resume();
    },
    cancel() {
      incoming.removeAllListeners("data");
    },
  });
}

/** Answers one HTTP request: builds the `Request`, runs the handler, streams the response. */
async function serveRequest(
  handler: Handler,
  incoming: http.IncomingMessage,
  outgoing: http.ServerResponse,
): Promise<void> {
  const aborted = new AbortController();
  const completed = Promise.withResolvers<void>();
  outgoing.once("close", () => {
    completed.resolve();
    // The client left before the response ended: SSE and long reads stop with it.
    if (!outgoing.writableFinished) aborted.abort();
  });
  const request = toRequest(incoming, aborted.signal, true);
  const response = request instanceof Response
    ? request
    : await handler(request, infoOf(incoming.socket as Socket, completed.promise));
  // A body the handler did not read (refused before reading, or late: 408) is still on its
  // way: the next request on this connection cannot be parsed before it, so end the connection.
  await writeResponse(response, outgoing, !incoming.complete);
}

/** Whether a response body is a stream to forward as it comes (SSE), not a whole document. */
function isStream(response: Response): boolean {
  return response.headers.get("content-type")?.startsWith("text/event-stream") ?? false;
}

/**
 * Writes `response` to node's response: a whole body with its length, as `Deno.serve` does
 * (every answer but SSE is built in memory), a stream chunk by chunk as the socket drains.
 */
async function writeResponse(
  response: Response,
  outgoing: http.ServerResponse,
  closeAfter = false,
): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  if (closeAfter) headers["connection"] = "close";
  response.headers.forEach((value, name) => {
    if (name !== "set-cookie") headers[name] = value;
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) headers["set-cookie"] = cookies;
  if (response.body === null || !isStream(response)) {
    const body = response.body === null ? null : new Uint8Array(await response.arrayBuffer());
    headers["content-length"] = String(body?.byteLength ?? 0);
    outgoing.writeHead(response.status, headers);
    outgoing.end(body);
    return;
  }
  outgoing.writeHead(response.status, headers);
  // The stream's head must reach the client now, not with its first event.
  outgoing.flushHeaders();
  const reader = response.body.getReader();
  outgoing.once("close", () => reader.cancel().catch(() => {}));
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!outgoing.write(value)) await drained(outgoing);
      if (outgoing.destroyed) return;
    }
    outgoing.end();
  } catch {
    // The body failed (or the client left): end the connection rather than the response.
    outgoing.destroy();
  }
}

/** Resolves when `outgoing` can take more, or has closed. */
function drained(outgoing: http.ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const settle = () => {
      outgoing.off("drain", settle);
      outgoing.off("close", settle);
      resolve();
    };
    outgoing.on("drain", settle);
    outgoing.on("close", settle);
  });
}

/**
 * Answers a request with an `Upgrade` header. The handler upgrades through
 * {@linkcode upgradeWebSocket} (the runtime answers 101 and owns the socket from then on) or
 * answers why not, which is written on the raw socket before it is closed.
 */
async function serveUpgrade(
  handler: Handler,
  incoming: http.IncomingMessage,
  socket: Socket,
  head: Uint8Array,
): Promise<void> {
  // Node hands an upgrade's socket over without its own error listener: a client that leaves
  // while the refusal below is written (EPIPE, ECONNRESET) must not become an uncaught error,
  // which would end the process.
  socket.on("error", () => socket.destroy());
  const completed = Promise.withResolvers<void>();
  socket.once("close", () => completed.resolve());
  const request = toRequest(incoming, null, false);
  let response: Response;
  if (request instanceof Response) {
    response = request;
  } else {
    upgradeSockets.set(request, { socket, head });
    response = await handler(request, infoOf(socket, completed.promise));
    upgradeSockets.delete(request);
  }
  if (response.status === 101) return;
  const headers: string[] = [];
  response.headers.forEach((value, name) => headers.push(`${name}: ${value}`));
  endWithResponse(socket, response.status, headers, new Uint8Array(await response.arrayBuffer()));
}

/**
 * Writes a whole HTTP/1.1 response on a socket node no longer answers for (an upgrade it handed
 * over, a request it could not parse) and closes it.
 */
function endWithResponse(
  socket: Socket,
  status: number,
  headers: readonly string[],
  body: Uint8Array,
): void {
  const head = [
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ""}`,
    ...headers,
    `content-length: ${body.byteLength}`,
    "connection: close",
    "",
    "",
  ];
  socket.write(head.join("\r\n"));
  socket.end(body);
}

/** The code a request node refused before any handler ran gets, by node's error code. */
function clientErrorCode(code: string | undefined): HttpErrorCode {
  switch (code) {
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return "request_timeout";
    case "HPE_HEADER_OVERFLOW":
      return "headers_too_large";
    default:
      return "bad_request";
  }
}

const CLIENT_ERROR_MESSAGES: Partial<Record<HttpErrorCode, string>> = {
  request_timeout: "the request did not arrive within HERALD_HEADER_TIMEOUT_MS",
  headers_too_large: "the request head is larger than HERALD_MAX_HEADER_BYTES",
  bad_request: "the request is not valid HTTP/1.1",
};

/**
 * A request node could not parse or that timed out: a documented JSON answer and a closed
 * socket; a debug line only (anyone can cause these, so they must not flood the log).
 */
function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  const code = clientErrorCode(error.code);
  log.debug("Refused a malformed or late request: {code}", { code: String(error.code) });
  if (error.code === "ECONNRESET" || !socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ error: { code, message: CLIENT_ERROR_MESSAGES[code] } });
  endWithResponse(
    socket,
    HTTP_ERRORS[code],
    ["content-type: application/json; charset=utf-8"],
    new TextEncoder().encode(body),
  );
}
