/**
 * Shared test harness: real hubs on ephemeral ports (in this process or as a child process),
 * real WebSocket clients, and waiting on conditions with a deadline instead of sleeping.
 * @module
 */

import { assemble, type Overrides } from "../main.ts";
import type { App } from "../server/app.ts";
import { type Config, loadConfig } from "../server/config.ts";

/** The publish token every test hub uses. */
export const TEST_TOKEN = "test-publish-token-0123456789";

/** Polls `condition` until it is truthy; throws with `what` after `timeoutMs`. */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  what: string,
  timeoutMs = 5000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A hub served in this process on an ephemeral loopback port. */
export interface TestHub {
  readonly app: App;
  readonly config: Config;
  readonly port: number;
  readonly url: string;
  readonly wsUrl: string;
  /** POSTs to /events with the publish token. */
  publish(body: unknown, headers?: Record<string, string>): Promise<Response>;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts a hub in this process with `env` settings over the test defaults. */
export function startTestHub(
  env: Record<string, string> = {},
  overrides: Overrides = {},
): TestHub {
  const config = loadConfig({
    PORT: "0",
    HERALD_HOSTNAME: "127.0.0.1",
    HERALD_PUBLISH_TOKEN: TEST_TOKEN,
    ...env,
  });
  const app = assemble(config, TEST_TOKEN, overrides);
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, app.handler);
  const port = server.addr.port;
  const url = `http://127.0.0.1:${port}`;
  const close = async () => {
    await app.drain();
    await server.shutdown();
    overrides.auth?.close?.();
  };
  return {
    app,
    config,
    port,
    url,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    publish: (body, headers = {}) =>
      fetch(`${url}/events`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${TEST_TOKEN}`,
          "content-type": "application/json",
          ...headers,
        },
        body: typeof body === "string" ? body : JSON.stringify(body),
      }),
    close,
    [Symbol.asyncDispose]: close,
  };
}

/**
 * Starts a hub in this process like {@linkcode startTestHub}, then starts it as `main.ts` does
 * (opens its history and rebuilds state); closing it also closes the history.
 */
export async function openTestHub(env: Record<string, string> = {}): Promise<TestHub> {
  const hub = startTestHub(env);
  await hub.app.hub.start();
  await hub.app.agents.start();
  const close = async () => {
    await hub.close();
    await hub.app.agents.close();
    await hub.app.hub.history.close();
  };
  return { ...hub, close, [Symbol.asyncDispose]: close };
}

/** A parsed server frame. */
// deno-lint-ignore no-explicit-any
export type Frame = Record<string, any>;

/** A real WebSocket client that records every frame and its close. */
export class TestClient {
  readonly socket: WebSocket;
  readonly frames: Frame[] = [];
  closeEvent: CloseEvent | null = null;
  readonly opened: Promise<void>;
  readonly closedPromise: Promise<CloseEvent>;

  /** `headers` uses Deno's WebSocket extension (browsers cannot set headers). */
  constructor(url: string, headers?: Record<string, string>) {
    this.socket = headers === undefined ? new WebSocket(url) : new WebSocket(url, { headers });
    this.opened = new Promise((resolve, reject) => {
      this.socket.addEventListener("open", () => resolve(), { once: true });
      this.socket.addEventListener(
        "error",
        () => reject(new Error(`Could not connect to ${url}`)),
        {
          once: true,
        },
      );
    });
    this.closedPromise = new Promise((resolve) => {
      this.socket.addEventListener("close", (event) => {
        this.closeEvent = event;
        resolve(event);
      });
    });
    this.socket.addEventListener("message", (event) => {
      this.frames.push(JSON.parse(event.data as string));
    });
  }

  /** Opens a client and waits until it is connected. */
  static async connect(url: string, headers?: Record<string, string>): Promise<TestClient> {
    const client = new TestClient(url, headers);
    await client.opened;
    return client;
  }

  send(message: unknown): void {
    this.socket.send(typeof message === "string" ? message : JSON.stringify(message));
  }

  /** Frames that are events (not replies or notices). */
  get events(): Frame[] {
    return this.frames.filter((frame) => "seq" in frame);
  }

  /** Waits for the first frame matching `predicate`. */
  waitForFrame(predicate: (frame: Frame) => boolean, what: string, timeoutMs?: number) {
    return waitFor(() => this.frames.find(predicate), what, timeoutMs);
  }

  /** Waits for the reply to `requestId`. */
  reply(requestId: string | number, timeoutMs?: number): Promise<Frame> {
    return this.waitForFrame(
      (frame) => frame.requestId === requestId,
      `reply to ${requestId}`,
      timeoutMs,
    );
  }

  /** Sends a message and waits for its reply. */
  request(message: Frame & { requestId: string | number }): Promise<Frame> {
    this.send(message);
    return this.reply(message.requestId);
  }

  /** Waits until `count` events arrived. */
  waitForEvents(count: number, timeoutMs?: number): Promise<Frame[]> {
    return waitFor(
      () => this.events.length >= count ? this.events : null,
      `${count} events (have ${this.events.length})`,
      timeoutMs,
    );
  }

  /** Closes (if open) and waits for the close to complete. */
  async close(): Promise<void> {
    if (
      this.socket.readyState === WebSocket.OPEN || this.socket.readyState === WebSocket.CONNECTING
    ) {
      this.socket.close();
    }
    await this.closedPromise;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** A hub running as a child process (`deno run main.ts`), for signal and memory tests. */
export interface HubProcess {
  readonly child: Deno.ChildProcess;
  readonly port: number;
  readonly url: string;
  readonly wsUrl: string;
  /** Every log line the process wrote so far. */
  readonly logs: string[];
  /** Resident memory of the process in bytes, from /proc. */
  rss(): Promise<number>;
  stop(): Promise<Deno.CommandStatus>;
  [Symbol.asyncDispose](): Promise<void>;
}

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** How {@linkcode spawnHub} starts the hub. */
export interface SpawnOptions {
  /**
   * Run under `deno serve --parallel` with this many isolates (`DENO_JOBS`) on a free port,
   * instead of `deno run`; ready once every isolate logged that it is ready.
   */
  readonly parallel?: number;
  /** Script to run instead of main.ts (the benchmark's floor server logs its port the same way). */
  readonly script?: string;
  /** Deno flags before the script, such as `--cpu-prof` (the benchmark's profiler). */
  readonly denoFlags?: readonly string[];
}

/** Deno's hint under `deno run` that main.ts also has `export default { fetch }` (harmless). */
const DENO_SERVE_HINT = /^warning: Detected export default \{ fetch \}/;

/** A TCP port that was free a moment ago. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Spawns `deno run main.ts` on an ephemeral port and waits until it listens. */
export async function spawnHub(
  env: Record<string, string> = {},
  args: string[] = [],
  options: SpawnOptions = {},
): Promise<HubProcess> {
  const permissions = [
    "--allow-net",
    "--allow-env",
    "--allow-read",
    "--allow-write",
    "--allow-sys",
  ];
  const servePort = options.parallel === undefined ? undefined : freePort();
  const script = options.script ?? MAIN;
  const flags = [...(options.denoFlags ?? []), ...permissions];
  const child = new Deno.Command(Deno.execPath(), {
    args: servePort === undefined ? ["run", ...flags, script, ...args] : [
      "serve",
      "--parallel",
      `--port=${servePort}`,
      "--host=127.0.0.1",
      ...flags,
      script,
      ...args,
    ],
    env: {
      PORT: "0",
      HERALD_HOSTNAME: "127.0.0.1",
      HERALD_PUBLISH_TOKEN: TEST_TOKEN,
      HERALD_LOG_FORMAT: "json",
      ...(options.parallel !== undefined && { DENO_JOBS: String(options.parallel) }),
      ...env,
    },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const logs: string[] = [];
  let isolatesReady = 0;
  let resolvePort: (port: number) => void;
  const portPromise = new Promise<number>((resolve) => (resolvePort = resolve));
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    let pending = "";
    for await (const chunk of stream) {
      pending += decoder.decode(chunk, { stream: true });
      const lines = pending.split("\n");
      pending = lines.pop()!;
      for (const line of lines) {
        if (DENO_SERVE_HINT.test(line)) continue;
        logs.push(line);
        try {
          const record = JSON.parse(line);
          const port = record?.properties?.port;
          if (typeof port === "number") resolvePort(port);
          if (servePort !== undefined && /ready under deno serve/.test(record?.message ?? "")) {
            if (++isolatesReady === options.parallel) resolvePort(servePort);
          }
        } catch {
          // Not a JSON log line.
        }
      }
    }
    if (pending !== "") logs.push(pending);
  };
  const reading = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const status = child.status;
  const port = await Promise.race([
    portPromise,
    status.then((s) => {
      throw new Error(`Hub exited with ${s.code} before listening:\n${logs.join("\n")}`);
    }),
    new Promise<never>((_, reject) =>
      setTimeout(
        () => reject(new Error(`Hub did not listen within 15 s:\n${logs.join("\n")}`)),
        15_000,
      )
    ),
  ]);
  let stopped: Promise<Deno.CommandStatus> | null = null;
  const stop = () => {
    stopped ??= (async () => {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already exited.
      }
      const result = await status;
      await reading;
      return result;
    })();
    return stopped;
  };
  return {
    child,
    port,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    logs,
    rss: async () => {
      const statm = await Deno.readTextFile(`/proc/${child.pid}/statm`);
      return Number(statm.split(" ")[1]) * 4096;
    },
    stop,
    [Symbol.asyncDispose]: async () => {
      await stop();
    },
  };
}

/** A memory figure of a process in bytes from /proc/<pid>/status: VmRSS (now) or VmHWM (peak). */
export async function procMemory(pid: number, field: "VmRSS" | "VmHWM" = "VmRSS"): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kib = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status);
  if (kib === null) throw new Error(`No ${field} in /proc/${pid}/status`);
  return Number(kib[1]) * 1024;
}

/** Publishes through a test hub, expects 202 and returns the accepted cursors in order. */
export async function publishSeqs(hub: Pick<TestHub, "publish">, body: unknown): Promise<string[]> {
  const response = await hub.publish(body);
  if (response.status !== 202) {
    throw new Error(`Publish answered ${response.status}: ${await response.text()}`);
  }
  return (await response.json()).accepted.map((acceptance: { seq: string }) => acceptance.seq);
}

/** POSTs events to a hub's /events with the test token. */
export function publishTo(baseUrl: string, body: unknown): Promise<Response> {
  return fetch(`${baseUrl}/events`, {
    method: "POST",
    headers: { authorization: `Bearer ${TEST_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

/** Reads a hub's /metrics into a map from series (`name` or `name{label="v"}`) to value. */
export async function readMetrics(baseUrl: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const series = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    series.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return series;
}

/**
 * A `redis-server` child process on a free loopback port, without persistence unless
 * {@linkcode RedisOptions.persistence} asks for it.
 */
export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** Stops the server (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
  /** Kills the server (SIGKILL: no final save) and waits for it to exit. */
  crash(): Promise<void>;
  /** Freezes (SIGSTOP) or thaws (SIGCONT) the server: connections stay open, nothing answers. */
  pause(): void;
  unpause(): void;
  /** Runs one command with `redis-cli` and returns its output. */
  cli(...args: string[]): Promise<string>;
  /**
   * Starts it again on the same port (after `stop`): with an empty dataset, or what its
   * persistence kept.
   */
  start(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Why Redis tests cannot run here, or null when `redis-server` is installed. */
export function redisMissing(): string | null {
  try {
    const { success } = new Deno.Command("redis-server", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    return success ? null : "redis-server --version failed";
  } catch {
    return "redis-server is not installed (apt-get install redis-server; .ci/run does this)";
  }
}

/** How {@linkcode startRedis} configures the server. */
export interface RedisOptions {
  /**
   * `aof`: append-only file fsynced on every write; `rdb`: snapshots only (on shutdown or an
   * explicit `SAVE`), so a crash restores an older dataset. Default: none.
   */
  readonly persistence?: "aof" | "rdb";
}

/** Starts `redis-server` on a free loopback port and waits until it answers PING. */
export async function startRedis(options: RedisOptions = {}): Promise<RedisServer> {
  const port = freePort();
  const dir = options.persistence === undefined ? null : Deno.makeTempDirSync({ prefix: "redis" });
  const persistence = options.persistence === "aof"
    ? ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
    : options.persistence === "rdb"
    ? ["--appendonly", "no", "--save", "3600 1"]
    : ["--save", "", "--appendonly", "no"];
  let child: Deno.ChildProcess | null = null;
  const ping = async () => {
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        await conn.write(new TextEncoder().encode("PING\r\n"));
        const buffer = new Uint8Array(16);
        const read = await conn.read(buffer);
        return read !== null &&
          new TextDecoder().decode(buffer.subarray(0, read)).startsWith("+PONG");
      } finally {
        conn.close();
      }
    } catch {
      return false;
    }
  };
  const start = async () => {
    child = new Deno.Command("redis-server", {
      args: [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        ...persistence,
        ...(dir === null ? [] : ["--dir", dir]),
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    await waitFor(ping, `redis-server on port ${port}`, 10_000);
  };
  const end = async (signal: Deno.Signal) => {
    const running: Deno.ChildProcess | null = child;
    child = null;
    if (running === null) return;
    try {
      if (signal === "SIGKILL") running.kill("SIGCONT");
      running.kill(signal);
    } catch {
      // Already exited.
    }
    await running.status;
  };
  const stop = () => end("SIGTERM");
  const signal = (name: Deno.Signal) => (child as Deno.ChildProcess | null)?.kill(name);
  const cli = async (...args: string[]) => {
    const { stdout } = await new Deno.Command("redis-cli", {
      args: ["-p", String(port), ...args],
      stderr: "null",
    }).output();
    return new TextDecoder().decode(stdout).trim();
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop,
    crash: () => end("SIGKILL"),
    pause: () => signal("SIGSTOP"),
    unpause: () => signal("SIGCONT"),
    cli,
    start,
    [Symbol.asyncDispose]: async () => {
      await end("SIGKILL");
      if (dir !== null) await Deno.remove(dir, { recursive: true });
    },
  };
}
