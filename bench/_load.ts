/**
 * One load run: start the server under test (Herald or the floor) as its own process, connect
 * receiver processes, publish from a publisher process at a steady rate, and read the server's
 * CPU time and memory from /proc while it works.
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
import { cpuSeconds, rssBytes, RssSampler, settledRss } from "./_proc.ts";
import { Histogram } from "./_stats.ts";
import { LoadProcess, type Message } from "./_worker.ts";
import type { PublisherSpec } from "./publisher.ts";
import type { ReceiverSpec } from "./receiver.ts";

/** The servers every scenario runs against. */
export const TARGETS = ["herald", "floor"] as const;
/** One of {@linkcode TARGETS}. */
export type Target = typeof TARGETS[number];

const FLOOR = new URL("./floor.ts", import.meta.url).pathname;
const RECEIVER = new URL("./receiver.ts", import.meta.url);
const PUBLISHER = new URL("./publisher.ts", import.meta.url);

/**
 * Herald's settings for every run: its defaults (the harness adds JSON logs and a token), except
 * the connection caps: every load client connects from loopback, one address, in numbers past
 * the per-address default.
 */
export const HERALD_ENV: Record<string, string> = {
  HERALD_MAX_CONNECTIONS: "1000000",
  HERALD_MAX_CONNECTIONS_PER_IP: "1000000",
};

/** Starts a target server on an ephemeral loopback port. */
export function spawnTarget(
  target: Target,
  env: Record<string, string> = {},
  denoFlags: string[] = [],
): Promise<HubProcess> {
  return target === "herald"
    ? spawnHub({ ...HERALD_ENV, ...env }, [], { denoFlags })
    : spawnHub(env, [], { script: FLOOR, denoFlags });
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
  options: LoadOptions,
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

/** The shape of one run. */
export interface LoadOptions {
  /** Reading WebSocket clients. */
  readonly clients: number;
  /** Clients that complete the handshake and never read. */
  readonly stalled: number;
  /** 0: everyone subscribes to everything; n: clients and events spread over n apps. */
  readonly apps: number;
  /** Events per second, one per request. */
  readonly rate: number;
  readonly seconds: number;
  /** Seconds of the same load before measuring, so the JIT has warmed up. */
  readonly warmupSeconds: number;
  readonly payloadBytes: number;
  /** Reading clients per receiver process. */
  readonly perProcess: number;
  /** Longest wait for memory to settle before and after connecting. */
  readonly settleMs: number;
  /** Extra environment for the server. */
  readonly env?: Record<string, string>;
  /** Deno flags for the server, such as `--cpu-prof`. */
  readonly denoFlags?: string[];
  /** One process (the default) or a scale-out layout (Herald only). */
  readonly layout?: Layout;
}

/** What one run measured. */
export interface LoadResult {
  readonly target: Target;
  readonly options: LoadOptions;
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
  const socket = new WebSocket(`${wsUrl}?topic=*`);
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

async function collect(receivers: LoadProcess[], sent: number, apps: number) {
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
  receivers: LoadProcess[],
  options: LoadOptions,
  seconds: number,
): Promise<{ run: Message; drained: Awaited<ReturnType<typeof collect>> }> {
  const run = await publisher.call({ cmd: "run", rate: options.rate, seconds });
  const deadline = Date.now() + DRAIN_DEADLINE_MS;
  for (;;) {
    const drained = await collect(receivers, run.accepted, options.apps);
    if (drained.lost === 0 || Date.now() > deadline) return { run, drained };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Runs one load against one target and stops every process it started. */
export async function runLoad(target: Target, options: LoadOptions): Promise<LoadResult> {
  const { servers, stop } = await deploy(target, options);
  const server = servers[0]!;
  const processes: LoadProcess[] = [];
  try {
    const pids = servers.map((s) => s.child.pid);
    const rss = async () => (await Promise.all(pids.map(rssBytes))).reduce((a, b) => a + b, 0);
    const cpu = async () => (await Promise.all(pids.map(cpuSeconds))).reduce((a, b) => a + b, 0);
    for (const s of servers) await warmUpConnection(s.wsUrl);
    const baselineRss = await settledRss(rss, options.settleMs);

    const started = performance.now();
    const receiverCount = Math.max(
      servers.length,
      Math.ceil(options.clients / options.perProcess),
    );
    const receivers = await Promise.all(
      Array.from({ length: receiverCount }, (_, index) => {
        const first = Math.floor((options.clients * index) / receiverCount);
        const next = Math.floor((options.clients * (index + 1)) / receiverCount);
        const spec: ReceiverSpec = {
          wsUrl: servers[index % servers.length]!.wsUrl,
          count: next - first,
          firstIndex: first,
          apps: options.apps,
          stalled: index === 0 ? options.stalled : 0,
          concurrency: 32,
        };
        return LoadProcess.spawn(`receiver ${index + 1}/${receiverCount}`, RECEIVER, spec);
      }),
    );
    processes.push(...receivers);
    const connectMs = performance.now() - started;
    const idleRss = await settledRss(rss, options.settleMs);

    const publisherSpec: PublisherSpec = {
      url: server.url,
      token: TEST_TOKEN,
      payloadBytes: options.payloadBytes,
      apps: options.apps,
    };
    const publisher = await LoadProcess.spawn("publisher", PUBLISHER, publisherSpec);
    processes.push(publisher);

    if (options.warmupSeconds > 0) {
      const warm = await publishAndDrain(publisher, receivers, options, options.warmupSeconds);
      if (warm.drained.lost > 0) {
        throw new Error(`${target}: ${warm.drained.lost} deliveries lost during the warm-up`);
      }
    }
    await Promise.all(receivers.map((receiver) => receiver.call({ cmd: "reset" })));

    const sampler = new RssSampler(rss, 200);
    const cpuBefore = await cpu();
    const before = performance.now();
    const { run, drained } = await publishAndDrain(publisher, receivers, options, options.seconds);
    const wallSeconds = (performance.now() - before) / 1000;
    const cpuAfter = await cpu();
    sampler.stop();
    const endRss = await rss();
    const histogram = new Histogram();
    for (const report of drained.reports) histogram.merge(report.histogram);
    return {
      target,
      options,
      baselineRss,
      idleRss,
      peakRss: Math.max(sampler.peak, endRss),
      endRss,
      rssSeries: sampler.series,
      connectMs,
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
      metrics: target === "herald" ? await readMetrics(server.url) : {},
    };
  } finally {
    await stop();
    await Promise.all(processes.map((process) => process.stop()));
  }
}
