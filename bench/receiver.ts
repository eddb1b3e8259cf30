/**
 * A receiver process: holds many WebSocket clients of the server under test, counts the events
 * each one gets and records publish-to-delivery latency from the publish time the publisher put
 * in the payload. Optionally holds "stalled" clients: raw TCP sockets that complete the
 * WebSocket handshake and then never read.
 *
 * Clients of the socket.io peer speak its protocol on the same WebSocket (Engine.IO 4 framing,
 * socket.io 5 packets): answer the open packet with a namespace connect (`40`), wait for the
 * server's `40{...}` before counting as connected, answer pings (`2`) with pongs (`3`) and take
 * `42[...]` frames as events. On the websocket transport that is every byte `socket.io-client`
 * would exchange with the server, so the server does exactly the work it does for real clients,
 * while every server's receivers pay the same per-frame cost (a client library would put its
 * own CPU on the two cores the servers are measured on, and only for that peer).
 *
 * Spawned by the runner with `LoadProcess` (see `_worker.ts`); not meant to be run by hand.
 * @module
 */

import { Histogram, wallClockMs } from "./_stats.ts";
import { type Message, serveCommands } from "./_worker.ts";

/** What one receiver process holds. */
export interface ReceiverSpec {
  /** The socket URL up to where the subscription query goes on (ends with `?` or `&`). */
  readonly wsUrl: string;
  /** `socketio`: speak the socket.io protocol over the WebSocket (see the module doc). */
  readonly protocol: "websocket" | "socketio";
  /** Reading WebSocket clients. */
  readonly count: number;
  /** Global number of this process's first client, so apps spread evenly over processes. */
  readonly firstIndex: number;
  /** 0: every client subscribes to `*`; n: client i subscribes to `*` of app `app-<i mod n>`. */
  readonly apps: number;
  /** n > 0: every client subscribes to n exact topics (`bench.idle.0` ...) instead of `*`. */
  readonly topics: number;
  /** Raw clients that complete the handshake and never read. */
  readonly stalled: number;
  /** Handshakes in flight at once. */
  readonly concurrency: number;
}

const PUBLISH_TIME = '"t":';

const histogram = new Histogram();
let sockets: WebSocket[] = [];
let counts = new Uint32Array(0);
let appOf = new Uint32Array(0);
const stalled: Deno.TcpConn[] = [];
let unparsed = 0;
const closeCodes = new Map<number, number>();

/** Engine.IO 4 / socket.io 5 packets the receiver tells apart (see the module doc). */
const SIO_OPEN = "0";
const SIO_PING = "2";
const SIO_CONNECTED = "40";
const SIO_EVENT = "42";

function connect(url: string, index: number, socketio: boolean): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    if (!socketio) socket.onopen = () => resolve(socket);
    socket.onerror = () => reject(new Error(`Could not connect ${url}`));
    socket.onclose = (event) => closeCodes.set(event.code, (closeCodes.get(event.code) ?? 0) + 1);
    socket.onmessage = (event) => {
      const data = event.data as string;
      if (socketio && !data.startsWith(SIO_EVENT)) {
        if (data === SIO_PING) socket.send("3");
        else if (data.startsWith(SIO_CONNECTED)) resolve(socket);
        else if (data.startsWith(SIO_OPEN)) socket.send(SIO_CONNECTED);
        else unparsed++;
        return;
      }
      const at = data.indexOf(PUBLISH_TIME);
      if (at < 0) {
        unparsed++;
        return;
      }
      histogram.add(wallClockMs() - parseFloat(data.slice(at + 4, at + 40)));
      counts[index]!++;
    };
  });
}

/** A masked client text frame (RFC 6455 5.2) of a short ASCII text, for raw sockets. */
function clientTextFrame(text: string): Uint8Array {
  const payload = new TextEncoder().encode(text);
  const mask = crypto.getRandomValues(new Uint8Array(4));
  const frame = new Uint8Array(6 + payload.length);
  frame.set([0x81, 0x80 | payload.length, ...mask]);
  payload.forEach((byte, at) => (frame[6 + at] = byte ^ mask[at % 4]!));
  return frame;
}

async function connectStalled(wsUrl: string, socketio: boolean): Promise<Deno.TcpConn> {
  const url = new URL(`${wsUrl}topic=*`);
  const conn = await Deno.connect({ hostname: url.hostname, port: Number(url.port) });
  const request = [
    `GET ${url.pathname}${url.search} HTTP/1.1`,
    `Host: ${url.host}`,
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
    "",
    "",
  ].join("\r\n");
  await conn.write(new TextEncoder().encode(request));
  // Read the 101 response (and whatever follows it in the same read), then never read again.
  const buffer = new Uint8Array(4096);
  let head = "";
  while (!head.includes("\r\n\r\n")) {
    const read = await conn.read(buffer);
    if (read === null) throw new Error("Stalled client: connection closed during handshake");
    head += new TextDecoder().decode(buffer.subarray(0, read));
  }
  if (!head.startsWith("HTTP/1.1 101")) {
    throw new Error(`Stalled client: handshake refused: ${head.split("\r\n")[0]}`);
  }
  // A socket.io client joins the namespace; the server's open packet may still be unread.
  if (socketio) await conn.write(clientTextFrame(SIO_CONNECTED));
  return conn;
}

async function setup(spec: ReceiverSpec): Promise<Message> {
  counts = new Uint32Array(spec.count);
  appOf = new Uint32Array(spec.count);
  sockets = new Array(spec.count);
  const topicsQuery = Array.from({ length: spec.topics }, (_, k) => `topic=bench.idle.${k}`)
    .join("&");
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < spec.count) {
      const index = next++;
      const global = spec.firstIndex + index;
      const app = spec.apps > 0 ? global % spec.apps : 0;
      appOf[index] = app;
      const query = spec.topics > 0
        ? topicsQuery
        : spec.apps > 0
        ? `topic=*&appId=app-${app}`
        : "topic=*";
      sockets[index] = await connect(spec.wsUrl + query, index, spec.protocol === "socketio");
    }
  };
  await Promise.all(Array.from({ length: Math.min(spec.concurrency, spec.count) }, worker));
  for (let index = 0; index < spec.stalled; index++) {
    stalled.push(await connectStalled(spec.wsUrl, spec.protocol === "socketio"));
  }
  return { ready: spec.count + stalled.length, connectMs: performance.now() - started };
}

/** Events client `index` should have got when `sent` events went round-robin over `apps`. */
function expected(index: number, sent: number, apps: number): number {
  if (apps === 0) return sent;
  const app = appOf[index]!;
  return Math.floor(sent / apps) + (app < sent % apps ? 1 : 0);
}

function handle(command: Message): Message {
  switch (command.cmd) {
    case "reset":
      histogram.reset();
      counts.fill(0);
      unparsed = 0;
      return { ok: true };
    case "report": {
      const sent = command.sent as number;
      const apps = command.apps as number;
      let received = 0;
      let lost = 0;
      let duplicated = 0;
      counts.forEach((count, index) => {
        received += count;
        const want = expected(index, sent, apps);
        if (count < want) lost += want - count;
        else duplicated += count - want;
      });
      const open = sockets.filter((socket) => socket.readyState === WebSocket.OPEN).length;
      return {
        received,
        lost,
        duplicated,
        unparsed,
        open,
        closeCodes: Object.fromEntries(closeCodes),
        histogram: histogram.toSparse(),
      };
    }
    default:
      return { error: `unknown command ${command.cmd}` };
  }
}

if (import.meta.main) await serveCommands(setup, handle);
