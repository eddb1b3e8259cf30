/**
 * The socket.io peer: socket.io 4.8 as a user would set it up for this job, on the websocket
 * transport only (no long-polling), behind the benchmark's contract (`_contract.js`). An event
 * without an appId goes to everyone with `io.emit`, one with an appId to the app's room
 * (`io.to(room).emit`); socket.io encodes a broadcast once for all its sockets. Exact topics are
 * rooms too. Heartbeat and every other option are socket.io's defaults (ping every 25 s).
 *
 * Benchmark-only: `node bench/peers/socketio_hub.js` (PORT, HERALD_HOSTNAME). Clients connect to
 * `/socket.io/?EIO=4&transport=websocket` and speak Engine.IO 4 / socket.io 5 (bench/receiver.ts).
 * @module
 */

import { createRequire } from "node:module";
import { readQuery, serve } from "./_contract.js";

// Loaded with require from bench/peers/node_modules: a static import would put the package in
// the Deno module graph that `deno check` resolves, where it is not a dependency.
const require = createRequire(import.meta.url);
const { Server } = require("socket.io");

/** @type {Server} */
let io;

serve("socket.io peer", (event) => {
  if (event.appId === undefined) io.emit("event", event);
  else io.to(`app:${event.appId}`).emit("event", event);
}, (server) => {
  io = new Server(server, { transports: ["websocket"], serveClient: false });
  io.on("connection", (socket) => {
    const { appId, topics } = readQuery(socket.request.url ?? "/");
    const rooms = topics.map((topic) => `topic:${topic}`);
    if (appId !== null) rooms.push(`app:${appId}`);
    if (rooms.length > 0) socket.join(rooms);
  });
  return () => io.disconnectSockets(true);
});
