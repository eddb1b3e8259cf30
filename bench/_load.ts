/**
 * Load against one server: start the server under test (Herald, the floor or a Node peer) as
 * its own process, connect receiver processes (a {@linkcode LoadSession}), then publish from a
 * publisher process at a steady rate as often as asked, reading the server's CPU time and
 * memory from /proc while it works.
 * @module
 */

import {
  type HubProcess,
  redisMissing,
  type RedisServer,
  spawnHub,
  startRedis,
  TEST_TOKEN,
} from "../tests/_harness.ts";
import { installPeers, type Peer, socketPath, spawnPeer } from "./peers/spawn.ts";
import { cpuSeconds, rssBytes, RssSampler, settledRss } from "./_proc.ts";
import { Histogram } from "./_stats.ts";
import { LoadProcess, type Message } from "./_worker.ts";
import type { PublisherSpec } from "./publisher.ts";
import type { ReceiverSpec } from "./receiver.ts";

/** The servers every side-by-side scenario runs against, in the first round's order. */
export const TARGETS = ["floor", "herald", "ws", "socketio"] as const;
/** One of {@linkcode TARGETS}. */
export type Target = typeof TARGETS[number];
/** How the report names each target. */
export const TARGET_NAMES: Record<Target, string> = {
  floor: "Deno floor",
  herald: "Herald",
  ws: "Node ws",
  socketio: "socket.io",
};

const FLOOR = new URL("./floor.ts", import.meta.url).pathname;
const RECEIVER = new URL("./receiver.ts", import.meta.url);
const PUBLISHER = new URL("./publisher.ts", import.meta.url);

/**
 * Herald's settings for every run: its defaults (the harness adds JSON logs and a token), except
 * the connection caps and the connection-attempt rate: every load client connects from loopback,
 * one address, in numbers and at rates past the per-address defaults.
 */
export const HERALD_ENV: Record<string, string> = {
  HERALD_MAX_CONNECTIONS: "1000000",
  HERALD_MAX_CONNECTIONS_PER_IP: "1000000",
  HERALD_UPGRADE_RATE: "1000000",
  HERALD_UPGRADE_BURST: "1000000",
};

/**
 * Starts a target server on an ephemeral loopback port. `runtimeFlags` go to Deno, or to Node
 * for a peer (both take `--cpu-prof` and `--cpu-prof-dir`).
 */
export async function spawnTarget(
  target: Target,
  env: Record<string, string> = {},
  runtimeFlags: string[] = [],
): Promise<HubProcess> {
  if (target === "herald") {
    return spawnHub({ ...HERALD_ENV, ...env }, [], { denoFlags: runtimeFlags });
  }
  if (target === "floor") return spawnHub(env, [], { script: FLOOR, denoFlags: runtimeFlags });
  await installPeers();
  return spawnPeer(target satisfies Peer, env, runtimeFlags);
}

/**
 * How the server is deployed: one process; `deno serve --parallel` with two isolates on the
 * broadcast bus; or two or three processes on one Redis (the bus). Herald only: the floor cannot
 * scale out.
 */
export type Layout = "single" | "parallel" | "redis" | "redis3";

const REDIS_NODES: Partial<Record<Layout, number>> = { redis: 2, redis3: 3 };

/** Why `layout` cannot run in this build or on this machine, or null when it can. */
export async function layoutMissing(layout: Layout): Promise<string | null> {
  if (layout === "single") return null;
  const onRedis = REDIS_NODES[layout] !== undefined;
  const bus = new URL(onRedis ? "../hub/bus/redis.ts" : "../hub/bus/broadcast.ts", import.meta.url);
  if (!(await Deno.stat(bus).then(() => true, () => false))) {
    return `this build has no ${onRedis ? "Redis" : "broadcast"} bus (${
      bus.pathname.split("/").slice(-2).join("/")
    })`;
  }
  return onRedis ? redisMissing() : null;
}

/** Starts the servers of a layout; `stop` stops them and whatever they need. */
async function deploy(
  target: Target,
  options: Shape,
): Promise<{ servers: HubProcess[]; stop: () => Promise<void> }> {
  const env = options.env ?? {};
  const denoFlags = options.denoFlags ?? [];
  const layout = options.layout ?? "single";
  if (layout === "single") {
    const server = await spawnTarget(target, env, denoFlags);
    return { servers: [server], stop: async () => void (await server.stop()) };
  }
  if (target !== "herald") throw new Error(`The ${target} has no ${layout} layout`);
  if (layout === "parallel") {
    const server = await spawnHub({ ...HERALD_ENV, HERALD_BUS: "broadcast", ...env }, [], {
      parallel: 2,
      denoFlags,
    });
    return { servers: [server], stop: async () => void (await server.stop()) };
  }
  const redis: RedisServer = await startRedis();
  const servers: HubProcess[] = [];
  const stop = async () => {
    await Promise.all(servers.map((server) => server.stop()));
    await redis.stop();
  };
  try {
    for (let node = 0; node < (REDIS_NODES[layout] ?? 2); node++) {
      servers.push(
        await spawnHub(
          { ...HERALD_ENV, HERALD_BUS: "redis", HERALD_REDIS_URL: redis.url, ...env },
          [],
          { denoFlags },
        ),
      );
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { servers, stop };
}

/** What a session connects: the server, its layout and its clients. */
export interface Shape {
  /** Reading WebSocket clients. */
  readonly clients: number;
  /** Clients that complete the handshake and never read. */
  readonly stalled: number;
  /** 0: everyone subscribes to everything; n: clients and events spread over n apps. */
  readonly apps: number;
  /** n > 0: every client holds n exact-topic subscriptions instead of `*` (idle runs). */
  readonly topics?: number;
  /** Reading clients per receiver process. */
  readonly perProcess: number;
  /** Longest wait for memory to settle before and after connecting. */
  readonly settleMs: number;
  /** Extra environment for the server. */
  readonly env?: Record<string, string>;
  /** Runtime flags for the server, such as `--cpu-prof`. */
  readonly denoFlags?: string[];
  /** One process (the default) or a scale-out layout (Herald only). */
  readonly layout?: Layout;
}

/** One measurement on a connected session. */
export interface Load {
  /** Events per second, one per request. */
  readonly rate: number;
  readonly seconds: number;
  /** Seconds of the same load before measuring, so the JIT has warmed up. */
  readonly warmupSeconds: number;
  readonly payloadBytes: number;
  /** How long deliveries may trail the last publish before the missing count as lost. */
  readonly drainMs?: number;
}

/** The shape of one run. */
export type LoadOptions = Shape & Load;

/** What one run measured. */
export interface LoadResult {
  readonly target: Target;
  readonly options: LoadOptions;
  /** Publishes the publisher made per second of its run (it falls behind past its limit). */
  readonly achievedRate: number;
  /** Server RSS with no clients, after a warm-up connection. */
  readonly baselineRss: number;
  /** Server RSS with every client connected and idle. */
  readonly idleRss: number;
  readonly peakRss: number;
  readonly endRss: number;
  readonly rssSeries: [number, number][];
  readonly connectMs: number;
  readonly cpuSeconds: number;
  /** From the first publish until every delivery arrived (or the drain deadline). */
  readonly wallSeconds: number;
  readonly publishSeconds: number;
  readonly sent: number;
  readonly failed: number;
  readonly firstFailure: string;
  readonly maxBehind: number;
  readonly delivered: number;
  readonly lost: number;
  readonly duplicated: number;
  readonly openClients: number;
  readonly closeCodes: Record<string, number>;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  /** Herald's own counters after the run (empty for the floor). */
  readonly metrics: Record<string, number>;
}

/** How long deliveries may trail the last publish before the missing ones count as lost. */
const DRAIN_DEADLINE_MS = 10_000;

async function warmUpConnection(wsUrl: string): Promise<void> {
  const socket = new WebSocket(`${wsUrl}topic=*`);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = () => reject(new Error(`Warm-up connection to ${wsUrl} failed`));
  });
  const closed = new Promise((resolve) => (socket.onclose = resolve));
  socket.close();
  await closed;
}

async function readMetrics(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const metrics: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const match = /^(herald_[a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
    if (match === null) continue;
    metrics[match[1]!] = (metrics[match[1]!] ?? 0) + Number(match[3]);
  }
  return metrics;
}

async function collect(receivers: readonly LoadProcess[], sent: number, apps: number) {
  const reports = await Promise.all(receivers.map((r) => r.call({ cmd: "report", sent, apps })));
  const sum = (field: string) => reports.reduce((total, report) => total + report[field], 0);
  const closeCodes: Record<string, number> = {};
  for (const report of reports) {
    for (const [code, count] of Object.entries(report.closeCodes as Record<string, number>)) {
      closeCodes[code] = (closeCodes[code] ?? 0) + count;
    }
  }
  return {
    reports,
    delivered: sum("received"),
    lost: sum("lost"),
    duplicated: sum("duplicated"),
    open: sum("open"),
    closeCodes,
  };
}

/** Publishes `seconds` of load and waits until it is delivered or the drain deadline passes. */
async function publishAndDrain(
  publisher: LoadProcess,
  receivers: readonly LoadProcess[],
  options: LoadOptions,
  seconds: number,
): Promise<{ run: Message; drained: Awaited<ReturnType<typeof collect>> }> {
  const run = await publisher.call({
    cmd: "run",
    rate: options.rate,
    seconds,
    payloadBytes: options.payloadBytes,
  });
  const deadline = Date.now() + (options.drainMs ?? DRAIN_DEADLINE_MS);
  for (;;) {
    const drained = await collect(receivers, run.accepted, options.apps);
    if (drained.lost === 0 || Date.now() > deadline) return { run, drained };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * One server with its clients connected: measure as many loads on it as needed, then close.
 * Memory at rest (before and after the clients connected) is read when it opens.
 */
export class LoadSession {
  readonly target: Target;
  readonly shape: Shape;
  /** Server RSS with no clients, after a warm-up connection. */
  readonly baselineRss: number;
  /** Server RSS with every client connected and idle. */
  readonly idleRss: number;
  readonly connectMs: number;
  readonly #servers: HubProcess[];
  readonly #stop: () => Promise<void>;
  readonly #receivers: LoadProcess[];
  readonly #publisher: LoadProcess | null;
  readonly #rss: () => Promise<number>;
  readonly #cpu: () => Promise<number>;

  private constructor(
    fields: {
      target: Target;
      shape: Shape;
      baselineRss: number;
      idleRss: number;
      connectMs: number;
      servers: HubProcess[];
      stop: () => Promise<void>;
      receivers: LoadProcess[];
      publisher: LoadProcess | null;
      rss: () => Promise<number>;
      cpu: () => Promise<number>;
    },
  ) {
    this.target = fields.target;
    this.shape = fields.shape;
    this.baselineRss = fields.baselineRss;
    this.idleRss = fields.idleRss;
    this.connectMs = fields.connectMs;
    this.#servers = fields.servers;
    this.#stop = fields.stop;
    this.#receivers = fields.receivers;
    this.#publisher = fields.publisher;
    this.#rss = fields.rss;
    this.#cpu = fields.cpu;
  }

  /**
   * Starts the server(s), measures memory at rest, connects every client and, unless
   * `publish` is false (idle-only runs), a publisher.
   */
  static async open(target: Target, shape: Shape, publish = true): Promise<LoadSession> {
    const { servers, stop } = await deploy(target, shape);
    const processes: LoadProcess[] = [];
    try {
      const pids = servers.map((s) => s.child.pid);
      const rss = async () => (await Promise.all(pids.map(rssBytes))).reduce((a, b) => a + b, 0);
      const cpu = async () => (await Promise.all(pids.map(cpuSeconds))).reduce((a, b) => a + b, 0);
      const socketUrl = (s: HubProcess) => `ws://127.0.0.1:${s.port}${socketPath(target)}`;
      for (const s of servers) await warmUpConnection(socketUrl(s));
      const baselineRss = await settledRss(rss, shape.settleMs);

      const started = performance.now();
      const receiverCount = Math.max(servers.length, Math.ceil(shape.clients / shape.perProcess));
      const receivers = await Promise.all(
        Array.from({ length: receiverCount }, (_, index) => {
          const first = Math.floor((shape.clients * index) / receiverCount);
          const next = Math.floor((shape.clients * (index + 1)) / receiverCount);
          const spec: ReceiverSpec = {
            wsUrl: socketUrl(servers[index % servers.length]!),
            protocol: target === "socketio" ? "socketio" : "websocket",
            count: next - first,
            firstIndex: first,
            apps: shape.apps,
            topics: shape.topics ?? 0,
            stalled: index === 0 ? shape.stalled : 0,
            concurrency: 32,
          };
          const receiver = LoadProcess.spawn(
            `receiver ${index + 1}/${receiverCount}`,
            RECEIVER,
            spec,
          );
          void receiver.then((r) => processes.push(r), () => {});
          return receiver;
        }),
      );
      const connectMs = performance.now() - started;
      const idleRss = await settledRss(rss, shape.settleMs);
      let publisher: LoadProcess | null = null;
      if (publish) {
        const publisherSpec: PublisherSpec = {
          url: servers[0]!.url,
          token: TEST_TOKEN,
          apps: shape.apps,
        };
        publisher = await LoadProcess.spawn("publisher", PUBLISHER, publisherSpec);
        processes.push(publisher);
      }
      return new LoadSession({
        target,
        shape,
        baselineRss,
        idleRss,
        connectMs,
        servers,
        stop,
        receivers,
        publisher,
        rss,
        cpu,
      });
    } catch (error) {
      await stop();
      await Promise.all(processes.map((process) => process.stop()));
      throw error;
    }
  }

  /** Publishes `load` (after its warm-up) and measures it; a failure says how the server ended. */
  async measure(load: Load): Promise<LoadResult> {
    try {
      return await this.#measure(load);
    } catch (error) {
      throw new Error(
        `${error instanceof Error ? error.message : error}${await this.#serverEnd()}`,
      );
    }
  }

  /** How a server that is gone ended, with its last log lines; empty while every one runs. */
  async #serverEnd(): Promise<string> {
    for (const server of this.#servers) {
      const status = await Promise.race([
        server.child.status,
        new Promise<null>((resolve) => setTimeout(() => resolve(null), 100)),
      ]);
      if (status !== null) {
        return `\nThe ${this.target} server exited (code ${status.code}, signal ${status.signal}):\n` +
          server.logs.slice(-15).join("\n");
      }
    }
    return "";
  }

  async #measure(load: Load): Promise<LoadResult> {
    const publisher = this.#publisher;
    if (publisher === null) throw new Error("This session was opened without a publisher");
    const options: LoadOptions = { ...this.shape, ...load };
    const receivers = this.#receivers;
    const reset = () => Promise.all(receivers.map((receiver) => receiver.call({ cmd: "reset" })));
    // Counts start from zero for the warm-up too: what an earlier load left counts for nothing.
    await reset();
    if (options.warmupSeconds > 0) {
      const warm = await publishAndDrain(publisher, receivers, options, options.warmupSeconds);
      if (warm.drained.lost > 0 && load.drainMs === undefined) {
        throw new Error(`${this.target}: ${warm.drained.lost} deliveries lost during the warm-up`);
      }
    }
    if (options.warmupSeconds > 0) await reset();

    const sampler = new RssSampler(this.#rss, 200);
    const cpuBefore = await this.#cpu();
    const before = performance.now();
    const { run, drained } = await publishAndDrain(publisher, receivers, options, options.seconds);
    const wallSeconds = (performance.now() - before) / 1000;
    const cpuAfter = await this.#cpu();
    sampler.stop();
    const endRss = await this.#rss();
    const histogram = new Histogram();
    for (const report of drained.reports) histogram.merge(report.histogram);
    return {
      target: this.target,
      options,
      achievedRate: run.sent / (run.elapsedMs / 1000),
      baselineRss: this.baselineRss,
      idleRss: this.idleRss,
      peakRss: Math.max(sampler.peak, endRss),
      endRss,
      rssSeries: sampler.series,
      connectMs: this.connectMs,
      cpuSeconds: cpuAfter - cpuBefore,
      wallSeconds,
      publishSeconds: run.elapsedMs / 1000,
      sent: run.accepted,
      failed: run.failed,
      firstFailure: run.firstFailure,
      maxBehind: run.maxBehind,
      delivered: drained.delivered,
      lost: drained.lost,
      duplicated: drained.duplicated,
      openClients: drained.open,
      closeCodes: drained.closeCodes,
      p50: histogram.quantile(0.5),
      p99: histogram.quantile(0.99),
      max: histogram.quantile(1),
      metrics: this.target === "herald" ? await readMetrics(this.#servers[0]!.url) : {},
    };
  }

  /** Stops the servers and every process the session started. */
  async close(): Promise<void> {
    await this.#stop();
    const processes = [...this.#receivers, ...(this.#publisher === null ? [] : [this.#publisher])];
    await Promise.all(processes.map((process) => process.stop()));
  }
}

/** Runs one load against one target and stops every process it started. */
export async function runLoad(target: Target, options: LoadOptions): Promise<LoadResult> {
  const session = await LoadSession.open(target, options);
  try {
    return await session.measure(options);
  } finally {
    await session.close();
  }
}
