/**
 * The Node `ws` peer: what a user would write on `ws` 8 (a Set of sockets, a Map of Sets for
 * apps and topics, the heartbeat of the `ws` README) behind the benchmark's contract
 * (`_contract.js`). The frame is serialized once per event and encoded to a Buffer once, so
 * `send` copies nothing per socket: the fastest plain use of `ws`.
 *
 * Benchmark-only: `node bench/peers/ws_hub.js` (PORT, HERALD_HOSTNAME, PING_SECONDS).
 * @module
 */

import { createRequire } from "node:module";
import { readQuery, serve } from "./_contract.js";

// Loaded with require from bench/peers/node_modules: a static import would put the package in
// the Deno module graph that `deno check` resolves, where it is not a dependency.
const require = createRequire(import.meta.url);
const { WebSocketServer } = require("ws");

/** Herald's default ping interval (30 s of silence), so every server pays a heartbeat. */
const PING_MS = Number(process.env.PING_SECONDS ?? 30) * 1000;
const TEXT = { binary: false };

/** @type {Set<import("ws").WebSocket>} */
const everyone = new Set();
/** @type {Map<string, Set<import("ws").WebSocket>>} */
const byApp = new Map();
/** @type {Map<string, Set<import("ws").WebSocket>>} */
const byTopic = new Map();
/** @type {WeakSet<import("ws").WebSocket>} */
const alive = new WeakSet();

/**
 * @param {Map<string, Set<import("ws").WebSocket>>} index
 * @param {string} key
 */
function groupOf(index, key) {
  let group = index.get(key);
  if (group === undefined) index.set(key, group = new Set());
  return group;
}

serve("ws peer", (event) => {
  const frame = Buffer.from(JSON.stringify(event));
  const group = event.appId === undefined ? everyone : byApp.get(event.appId);
  if (group !== undefined) { for (const socket of group) socket.send(frame, TEXT); }
}, (server) => {
  const wss = new WebSocketServer({ server, path: "/ws", clientTracking: false });
  wss.on("connection", (socket, request) => {
    const { appId, topics } = readQuery(request.url ?? "/");
    const groups = [appId === null ? everyone : groupOf(byApp, appId)];
    for (const topic of topics) groups.push(groupOf(byTopic, topic));
    for (const group of groups) group.add(socket);
    alive.add(socket);
    socket.on("pong", () => alive.add(socket));
    socket.on("error", () => socket.terminate());
    socket.on("close", () => {
      for (const group of groups) group.delete(socket);
    });
  });
  const heartbeat = setInterval(() => {
    for (const group of [everyone, ...byApp.values()]) {
      for (const socket of group) {
        if (!alive.has(socket)) {
          socket.terminate();
          continue;
        }
        alive.delete(socket);
        socket.ping();
      }
    }
  }, PING_MS);
  return () => {
    clearInterval(heartbeat);
    for (const group of [everyone, ...byApp.values()]) {
      for (const socket of group) socket.close(1001);
    }
  };
});
