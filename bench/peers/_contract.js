/**
 * The benchmark's minimal hub contract, shared by the Node peers (`ws_hub.js`, `socketio_hub.js`):
 * `POST /events` takes one event or an array, stamps each with an id, a seq and a timestamp,
 * and hands it to the peer's fan-out once; `GET /health` answers 200. What a socket asked for
 * comes from its query string, as on Herald: `appId` (targeted routing: it gets only that app's
 * events) and `topic` (repeatable; exact topics other than `*` are held in the peer's index, as
 * a hub that routes by topic must, and only the idle scenario uses them).
 *
 * Benchmark-only, run by Node (`node bench/peers/ws_hub.js`); see bench/peers/spawn.ts.
 * @module
 */

import { randomUUID } from "node:crypto";
import { createServer } from "node:http";

const epoch = Date.now().toString(36);
let seq = 0;

/**
 * What a connecting socket asked for in its query string.
 * @param {string} rawUrl the request's URL (path and query)
 * @returns {{ appId: string | null, topics: string[] }}
 */
export function readQuery(rawUrl) {
  const params = new URL(rawUrl, "http://localhost").searchParams;
  return { appId: params.get("appId"), topics: params.getAll("topic").filter((t) => t !== "*") };
}

/**
 * Stamps an event as the floor and Herald do.
 * @param {{ type: string, appId?: string, namespace?: string, payload: unknown }} event
 */
function stamp(event) {
  return {
    type: event.type,
    appId: event.appId,
    namespace: event.namespace,
    payload: event.payload,
    id: randomUUID(),
    seq: `${epoch}-${++seq}`,
    timestamp: new Date().toISOString(),
  };
}

/**
 * An HTTP server that answers the contract's routes and hands every stamped event to `fanOut`;
 * other requests go to `fallback` (or 404). It listens on PORT and HERALD_HOSTNAME and logs one
 * JSON line with `properties.port`, like Herald, so the harness finds it the same way.
 * @param {string} name the peer's name, for the log line
 * @param {(event: ReturnType<typeof stamp>) => void} fanOut
 * @param {(server: import("node:http").Server) => () => void} attach wires the WebSocket side
 *   to the server; returns what closes every socket on SIGTERM
 */
export function serve(name, fanOut, attach) {
  const server = createServer((request, response) => {
    if (request.url === "/events" && request.method === "POST") {
      const chunks = [];
      request.on("data", (chunk) => chunks.push(chunk));
      request.on("end", () => {
        let body;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        } catch {
          response.writeHead(400).end();
          return;
        }
        const accepted = (Array.isArray(body) ? body : [body]).map((event) => {
          const stamped = stamp(event);
          fanOut(stamped);
          return { id: stamped.id, seq: stamped.seq };
        });
        response.writeHead(202, { "content-type": "application/json" });
        response.end(JSON.stringify({ accepted }));
      });
      return;
    }
    if (request.url === "/health") {
      response.writeHead(200, { "content-type": "application/json" });
      response.end('{"status":"ok"}');
      return;
    }
    response.writeHead(404).end();
  });
  const closeSockets = attach(server);
  server.listen(
    Number(process.env.PORT ?? 8801),
    process.env.HERALD_HOSTNAME ?? "127.0.0.1",
    () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      console.log(JSON.stringify({ message: `${name} listening`, properties: { port } }));
    },
  );
  process.on("SIGTERM", () => {
    closeSockets();
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
