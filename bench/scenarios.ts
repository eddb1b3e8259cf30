/**
 * The benchmark scenarios of issue 5, each run against Herald and the floor server in turn, with
 * the sizes of a full run and of the CI smoke run.
 * @module
 */

import {
  type Layout,
  layoutMissing,
  type LoadOptions,
  type LoadResult,
  runLoad,
  type Target,
  TARGETS,
} from "./_load.ts";

/** Sizes of one invocation. */
export interface Sizes {
  readonly name: "full" | "smoke";
  /** Client counts of the fan-out sweep (the chart's x axis); the last is the headline. */
  readonly fanoutClients: readonly number[];
  readonly fanoutRate: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly targeted: {
    readonly big: { readonly clients: number; readonly apps: number };
    readonly small: { readonly clients: number; readonly apps: number };
    readonly rate: number;
  };
  readonly slow: {
    readonly clients: number;
    readonly stalledShare: number;
    readonly payloadBytes: number;
    readonly rate: number;
    readonly seconds: number;
  };
  readonly perProcess: number;
  readonly settleMs: number;
  /** Rounds of the runs with a CPU target (headline fan-out, targeted routing); best kept. */
  readonly rounds: number;
}

/** The full run: about five minutes on two cores. */
export const FULL: Sizes = {
  name: "full",
  fanoutClients: [100, 300, 1000],
  fanoutRate: 50,
  seconds: 10,
  warmupSeconds: 1,
  targeted: { big: { clients: 10_000, apps: 1000 }, small: { clients: 100, apps: 10 }, rate: 500 },
  slow: { clients: 200, stalledShare: 0.1, payloadBytes: 8192, rate: 100, seconds: 15 },
  perProcess: 2500,
  settleMs: 3000,
  rounds: 2,
};

/** The CI smoke run: a few seconds per scenario, small counts. */
export const SMOKE: Sizes = {
  name: "smoke",
  fanoutClients: [20, 50],
  fanoutRate: 20,
  seconds: 1,
  warmupSeconds: 0.5,
  targeted: { big: { clients: 200, apps: 20 }, small: { clients: 20, apps: 2 }, rate: 50 },
  slow: { clients: 40, stalledShare: 0.1, payloadBytes: 8192, rate: 50, seconds: 2 },
  perProcess: 500,
  settleMs: 500,
  rounds: 1,
};

/** A run against each target with the same options. */
export type Pair = Record<Target, LoadResult>;

/** Payload sizes of the fan-out scenario. */
export const SMALL_PAYLOAD = 64;
export const LARGE_PAYLOAD = 2048;

/** Everything one invocation measured. */
export interface Results {
  readonly sizes: Sizes;
  /** Fan-out sweep with 64-byte payloads, by client count. */
  readonly fanout: { readonly clients: number; readonly pair: Pair }[];
  /** Fan-out at the largest client count with 2 KiB payloads. */
  readonly fanoutLarge: Pair;
  readonly targeted: { readonly big: Pair; readonly small: Pair };
  readonly slow: { readonly baseline: Pair; readonly stalled: Pair; readonly stalledCount: number };
  /** The headline fan-out (64 B) through each scale-out layout that can run here. */
  readonly scaleOut: {
    readonly runs: { readonly layout: Layout; readonly result: LoadResult }[];
    readonly skipped: string[];
  };
}

/**
 * Runs `options` against Herald, then the floor, back to back so they share the machine's mood;
 * with several rounds they alternate, and each keeps its round with the least server CPU (the
 * one least disturbed by whatever else ran on the machine).
 */
async function pair(label: string, options: LoadOptions, log: (line: string) => void, rounds = 1) {
  const results: Partial<Pair> = {};
  for (let round = 1; round <= rounds; round++) {
    for (const target of TARGETS) {
      const started = performance.now();
      const result = await runLoad(target, options);
      const best = results[target];
      if (best === undefined || result.cpuSeconds < best.cpuSeconds) results[target] = result;
      log(
        `  ${label} ${target}${rounds > 1 ? ` (round ${round}/${rounds})` : ""}: ` +
          `${result.delivered} deliveries, lost ${result.lost}, ` +
          `cpu ${result.cpuSeconds.toFixed(2)} s, p99 ${result.p99.toFixed(2)} ms ` +
          `(${((performance.now() - started) / 1000).toFixed(1)} s)`,
      );
    }
  }
  return results as Pair;
}

/** Runs every scenario. */
export async function runScenarios(sizes: Sizes, log: (line: string) => void): Promise<Results> {
  const base = {
    stalled: 0,
    apps: 0,
    seconds: sizes.seconds,
    warmupSeconds: sizes.warmupSeconds,
    perProcess: sizes.perProcess,
    settleMs: sizes.settleMs,
  };
  log("1. Fan-out");
  const headline = sizes.fanoutClients.at(-1)!;
  const fanout = [];
  for (const clients of sizes.fanoutClients) {
    const options = { ...base, clients, rate: sizes.fanoutRate, payloadBytes: SMALL_PAYLOAD };
    const rounds = clients === headline ? sizes.rounds : 1;
    fanout.push({ clients, pair: await pair(`${clients} clients, 64 B`, options, log, rounds) });
  }
  const fanoutLarge = await pair(
    `${headline} clients, 2 KiB`,
    {
      ...base,
      clients: headline,
      rate: sizes.fanoutRate,
      payloadBytes: LARGE_PAYLOAD,
    },
    log,
    sizes.rounds,
  );

  log("2. Targeted routing");
  const targetedRun = (shape: { clients: number; apps: number }) =>
    pair(
      `${shape.clients} connections over ${shape.apps} apps`,
      {
        ...base,
        ...shape,
        rate: sizes.targeted.rate,
        payloadBytes: SMALL_PAYLOAD,
      },
      log,
      sizes.rounds,
    );
  const small = await targetedRun(sizes.targeted.small);
  const big = await targetedRun(sizes.targeted.big);

  log("4. Slow consumers (3. idle capacity is read from the runs above)");
  const slowBase = {
    ...base,
    clients: sizes.slow.clients,
    rate: sizes.slow.rate,
    payloadBytes: sizes.slow.payloadBytes,
  };
  const stalledCount = Math.round(sizes.slow.clients * sizes.slow.stalledShare);
  const baseline = await pair(`${sizes.slow.clients} clients, none stalled`, slowBase, log);
  const stalled = await pair(
    `${sizes.slow.clients - stalledCount} reading + ${stalledCount} stalled`,
    {
      ...slowBase,
      clients: sizes.slow.clients - stalledCount,
      stalled: stalledCount,
      seconds: sizes.slow.seconds,
    },
    log,
  );

  log("5. Scale-out");
  const scaleOut = {
    runs: [] as { layout: Layout; result: LoadResult }[],
    skipped: [] as string[],
  };
  for (const layout of ["parallel", "redis", "redis3"] as const) {
    const missing = await layoutMissing(layout);
    if (missing !== null) {
      scaleOut.skipped.push(`${layout}: ${missing}`);
      log(`  ${layout} skipped: ${missing}`);
      continue;
    }
    const started = performance.now();
    const result = await runLoad("herald", {
      ...base,
      clients: headline,
      rate: sizes.fanoutRate,
      payloadBytes: SMALL_PAYLOAD,
      layout,
    });
    scaleOut.runs.push({ layout, result });
    log(
      `  ${headline} clients, 64 B, ${layout} herald: ${result.delivered} deliveries, ` +
        `lost ${result.lost}, cpu ${result.cpuSeconds.toFixed(2)} s, p99 ${
          result.p99.toFixed(2)
        } ms (${((performance.now() - started) / 1000).toFixed(1)} s)`,
    );
  }
  return {
    sizes,
    fanout,
    fanoutLarge,
    targeted: { big, small },
    slow: { baseline, stalled, stalledCount },
    scaleOut,
  };
}
