/**
 * Where an idle connection's memory goes on Deno (`deno task bench:layers [count]`): holds
 * `count` idle loopback connections on servers that stop at successive layers of the stack,
 * each its own process, and prints the RSS and V8 heap growth per connection of each:
 *
 * - `tcp`: `Deno.listen` accepting and holding the socket (one pending `read`);
 * - `http`: `Deno.serve` holding one request whose response body never ends;
 * - `websocket`: `Deno.upgradeWebSocket` without a heartbeat;
 * - `websocket+idle`: the same with `idleTimeout` (the floor's and Herald's runtime heartbeat);
 * - `node+websocket`: `node:http` accepting and parsing the handshake (Herald's default front,
 *   server/node_http.ts), then `Deno.upgradeWebSocket` on its socket with `idleTimeout`;
 * - `floor`: the benchmark floor itself.
 *
 * The difference between two layers is what the upper one adds. The V8 heap part is JS objects
 * (the rest of the RSS is native: the runtime's connection state and buffers, the allocator).
 * @module
 */

const LAYERS = ["tcp", "http", "websocket", "websocket+idle", "node+websocket", "floor"] as const;
type Layer = typeof LAYERS[number];

/** The server side: holds connections at `layer`, answers `mem` on stdin with its memory. */
async function serve(layer: Layer): Promise<void> {
  const held: unknown[] = [];
  let port: number;
  if (layer === "tcp") {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    port = (listener.addr as Deno.NetAddr).port;
    void (async () => {
      for await (const conn of listener) {
        held.push(conn);
        void conn.read(new Uint8Array(1024)).catch(() => {});
      }
    })();
  } else if (layer === "node+websocket") {
    const { serveNodeHttp, upgradeWebSocket } = await import("../server/node_http.ts");
    const settings = {
      port: 0,
      hostname: "127.0.0.1",
      headerTimeoutMs: 10_000,
      bodyTimeoutMs: 10_000,
      keepAliveTimeoutMs: 5_000,
      maxHeaderBytes: 16_384,
    };
    port = (await serveNodeHttp(settings, (request) => {
      const { socket, response } = upgradeWebSocket(request, { idleTimeout: 60 });
      held.push(socket);
      return response;
    }, () => {})).port;
  } else if (layer === "floor") {
    const { handler } = await import("./floor.ts");
    port = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler).addr.port;
  } else {
    port = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
      if (layer === "http") {
        const body = new ReadableStream({ start: (controller) => void held.push(controller) });
        return new Response(body);
      }
      const { socket, response } = Deno.upgradeWebSocket(
        request,
        layer === "websocket+idle" ? { idleTimeout: 60 } : {},
      );
      held.push(socket);
      return response;
    }).addr.port;
  }
  console.log(JSON.stringify({ port }));
  for await (const _ of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    // Garbage is not what a connection holds: collect it first (--expose-gc, below).
    (globalThis as { gc?: () => void }).gc?.();
    const { heapUsed, external, rss } = Deno.memoryUsage();
    console.log(JSON.stringify({ heapUsed, external, rss, held: held.length }));
  }
}

/** Opens one idle client connection of the kind `layer` needs. */
async function open(layer: Layer, port: number): Promise<unknown> {
  if (layer === "tcp") return await Deno.connect({ hostname: "127.0.0.1", port });
  if (layer === "http") {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    await conn.read(new Uint8Array(4096));
    return conn;
  }
  const socket = new WebSocket(`ws://127.0.0.1:${port}/ws?topic=*`);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = reject;
  });
  return socket;
}

async function measure(layer: Layer, count: number) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-read",
      "--allow-env",
      "--v8-flags=--expose-gc",
      import.meta.filename!,
      "--serve",
      layer,
    ],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream())[Symbol.asyncIterator]();
  const writer = child.stdin.getWriter();
  const read = async () => JSON.parse((await lines.next()).value);
  const { port } = await read();
  const memory = async () => {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await writer.write(new TextEncoder().encode("mem\n"));
    return await read();
  };
  // One connection first, so code compiled on first use is in the baseline.
  const warm = await open(layer, port);
  const before = await memory();
  const clients = [warm];
  while (clients.length < count + 1) {
    clients.push(...await Promise.all(Array.from({ length: 50 }, () => open(layer, port))));
  }
  const after = await memory();
  const per = (field: string) => (after[field] - before[field]) / (clients.length - 1) / 1024;
  for (const client of clients) {
    if (client instanceof WebSocket) client.close();
    else (client as Deno.Conn).close();
  }
  await writer.close();
  child.kill();
  await child.status;
  return { rss: per("rss"), heap: per("heapUsed"), external: per("external") };
}

if (import.meta.main) {
  const [first, second] = Deno.args;
  if (first === "--serve") {
    await serve(second as Layer);
  } else {
    const count = Number(first ?? 2000);
    console.log(`KiB per idle connection, ${count} connections (RSS, V8 heap, external)`);
    for (const layer of LAYERS) {
      const { rss, heap, external } = await measure(layer, count);
      console.log(
        `${layer.padEnd(16)} RSS ${rss.toFixed(1).padStart(6)}  heap ${
          heap.toFixed(1).padStart(5)
        }  external ${external.toFixed(1).padStart(5)}`,
      );
    }
  }
}
