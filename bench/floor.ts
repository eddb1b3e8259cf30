/**
 * The floor: the least a Deno server can do to forward published events to WebSockets, measured
 * next to Herald so that results read as ratios to what the runtime itself costs.
 *
 * `POST /events` takes the same body as Herald (one event or an array), stamps each event with
 * an id, a seq and a timestamp, serializes the same frame shape once, and `send`s it to every
 * socket: no auth, validation, queues, back-pressure or subscriptions. The one concession is
 * the targeted-routing scenario: a socket that connected with `?appId=x` gets only events of
 * app `x` (one Map lookup), otherwise the floor could not run that scenario at all. Exact topics
 * asked for with `?topic=` (other than `*`) are held in a Map of Sets, as a hub that routes by
 * topic must; only the idle scenario uses them. Sockets get the same runtime heartbeat
 * (`idleTimeout`) as Herald's default. The Node peers (`bench/peers/`) keep the same contract.
 *
 * Run: `deno run --allow-net --allow-env bench/floor.ts` (PORT, HERALD_HOSTNAME as for Herald).
 * It logs one JSON line with `properties.port` when listening, like Herald's JSON logs.
 * @module
 */

import { SETTINGS } from "../server/config.ts";

interface FloorEvent {
  type: string;
  appId?: string;
  namespace?: string;
  payload: unknown;
}

/** The runtime's heartbeat as Herald sets it by default (see server/transports/websocket.ts), so both pay the same pings. */
const IDLE_TIMEOUT = SETTINGS.pingIntervalSeconds.default * 2;

const everyone = new Set<WebSocket>();
const byApp = new Map<string, Set<WebSocket>>();
const byTopic = new Map<string, Set<WebSocket>>();
const epoch = Date.now().toString(36);
let seq = 0;

function groupOf(index: Map<string, Set<WebSocket>>, key: string): Set<WebSocket> {
  let group = index.get(key);
  if (group === undefined) index.set(key, group = new Set());
  return group;
}

function join(socket: WebSocket, appId: string | null, topics: readonly string[]): void {
  const groups = [appId === null ? everyone : groupOf(byApp, appId)];
  for (const topic of topics) if (topic !== "*") groups.push(groupOf(byTopic, topic));
  socket.onopen = () => groups.forEach((group) => group.add(socket));
  socket.onclose = () => groups.forEach((group) => group.delete(socket));
  socket.onerror = () => groups.forEach((group) => group.delete(socket));
}

function forward(event: FloorEvent): { id: string; seq: string } {
  const stamped = {
    type: event.type,
    appId: event.appId,
    namespace: event.namespace,
    payload: event.payload,
    id: crypto.randomUUID(),
    seq: `${epoch}-${++seq}`,
    timestamp: new Date().toISOString(),
  };
  const frame = JSON.stringify(stamped);
  const group = event.appId === undefined ? everyone : byApp.get(event.appId);
  if (group !== undefined) { for (const socket of group) socket.send(frame); }
  return { id: stamped.id, seq: stamped.seq };
}

/** Serves the floor: `/ws`, `POST /events` and `/health`. */
export async function handler(request: Request): Promise<Response> {
  const url = new URL(request.url);
  if (url.pathname === "/ws") {
    const { socket, response } = Deno.upgradeWebSocket(request, { idleTimeout: IDLE_TIMEOUT });
    join(socket, url.searchParams.get("appId"), url.searchParams.getAll("topic"));
    return response;
  }
  if (url.pathname === "/events" && request.method === "POST") {
    const body = await request.json();
    const events: FloorEvent[] = Array.isArray(body) ? body : [body];
    return Response.json({ accepted: events.map(forward) }, { status: 202 });
  }
  if (url.pathname === "/health") return Response.json({ status: "ok" });
  return new Response("not found", { status: 404 });
}

if (import.meta.main) {
  const server = Deno.serve({
    port: Number(Deno.env.get("PORT") ?? 8801),
    hostname: Deno.env.get("HERALD_HOSTNAME") ?? "127.0.0.1",
    onListen: ({ port }) => {
      console.log(JSON.stringify({ message: "Floor listening", properties: { port } }));
    },
  }, handler);
  Deno.addSignalListener("SIGTERM", () => {
    for (const socket of everyone) socket.close(1001);
    for (const group of byApp.values()) for (const socket of group) socket.close(1001);
    server.shutdown().then(() => Deno.exit(0));
  });
  await server.finished;
}
