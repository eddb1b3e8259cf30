/**
 * Judges scenario results: one row per measure with every server's median over the rounds and
 * its spread, Herald's ratios to the others (medians of the per-round ratios: each round ran
 * the servers back to back), the target and the verdict; plus what broke in a run (loss, failed
 * publishes, dropped clients, a run that threw), which fails CI.
 * @module
 */

import { SETTINGS } from "../../server/config.ts";
import { type Layout, type LoadResult, type Target, TARGET_NAMES, TARGETS } from "../_load.ts";
import type { IdleRun, Results, Rounds } from "../scenarios.ts";
import { compact, count, deliveriesPerCpu, fixed, KIB, MIB } from "./_format.ts";

/** One line of the results table. */
export interface Row {
  readonly scenario: string;
  readonly measure: string;
  /** Each server's figure (median and spread), empty where it does not apply. */
  readonly values: Record<Target, string>;
  /** Herald against the others, e.g. `0.93x / 1.21x / 1.55x` (floor / ws / socket.io). */
  readonly ratios: string;
  readonly target: string;
  readonly verdict: "pass" | "miss" | "";
}

/** Rows plus what broke: a broken run fails CI, a missed target never does. */
export interface Verdicts {
  readonly rows: Row[];
  readonly problems: string[];
}

/** Median, least and greatest of some samples (NaN when there are none). */
export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

/** The median and range of `values`. */
export function spread(values: readonly number[]): Spread {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return { median: NaN, min: NaN, max: NaN };
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted.at(-1)! };
}

/** `median (min-max)`, or just the value for a single sample. */
function show(s: Spread, format: (value: number) => string): string {
  if (!Number.isFinite(s.median)) return "n/a";
  return s.min === s.max
    ? format(s.median)
    : `${format(s.median)} (${format(s.min)}-${format(s.max)})`;
}

/** Median over rounds of `herald / other` for a measure, pairing runs of the same round. */
function roundRatio<T>(runs: Rounds<T>, other: Target, measure: (run: T) => number): number {
  const pairs = Math.min(runs.herald.length, runs[other].length);
  const ratios = Array.from(
    { length: pairs },
    (_, round) => measure(runs.herald[round]!) / measure(runs[other][round]!),
  );
  return spread(ratios).median;
}

const OTHERS = ["floor", "ws", "socketio"] as const;
const x = (value: number, digits = 2) =>
  Number.isFinite(value) ? `${value.toFixed(digits)}x` : "n/a";
const verdict = (ok: boolean): "pass" | "miss" => ok ? "pass" : "miss";

function valuesOf<T>(runs: Rounds<T>, measure: (run: T) => number, format: (v: number) => string) {
  return Object.fromEntries(
    TARGETS.map((target) => [target, show(spread(runs[target].map(measure)), format)]),
  ) as Record<Target, string>;
}

function ratiosOf<T>(runs: Rounds<T>, measure: (run: T) => number) {
  const ratios = OTHERS.map((other) => roundRatio(runs, other, measure));
  return { ratios, text: ratios.map((ratio) => x(ratio)).join(" / ") };
}

const onlyHerald = (value: string): Record<Target, string> => ({
  floor: "",
  herald: value,
  ws: "",
  socketio: "",
});

const cpuPerPublishMicros = (r: LoadResult) => (r.cpuSeconds / Math.max(r.sent, 1)) * 1e6;
const idlePerConnection = (r: IdleRun) => (r.idleRss - r.baselineRss) / r.clients;
const growth = (r: LoadResult) => r.peakRss - r.idleRss;

/** RSS slope over the second half of a run, in bytes per second. */
function lateSlope(r: LoadResult): number {
  const series = r.rssSeries;
  if (series.length < 4) return NaN;
  const [t0, b0] = series[Math.floor(series.length / 2)]!;
  const [t1, b1] = series.at(-1)!;
  return t1 === t0 ? NaN : ((b1 - b0) / (t1 - t0)) * 1000;
}

function checkRun(label: string, r: LoadResult, problems: string[]): void {
  const where = `${label} (${TARGET_NAMES[r.target]})`;
  if (r.failed > 0) problems.push(`${where}: ${r.failed} publishes failed: ${r.firstFailure}`);
  if (r.lost > 0) problems.push(`${where}: ${r.lost} deliveries lost`);
  if (r.duplicated > 0) problems.push(`${where}: ${r.duplicated} deliveries duplicated`);
  if (r.openClients < r.options.clients) {
    problems.push(
      `${where}: ${r.options.clients - r.openClients} reading clients were disconnected ` +
        `(close codes ${JSON.stringify(r.closeCodes)})`,
    );
  }
  if (r.sent === 0) problems.push(`${where}: nothing was published`);
}

function checkRounds(label: string, runs: Rounds<LoadResult>, problems: string[]): void {
  for (const target of TARGETS) for (const run of runs[target]) checkRun(label, run, problems);
}

/** The target of a measure where more is better: near the floor and ahead of both peers. */
const AHEAD = ">= 0.9x floor, > ws, > socket.io";
const aheadOk = (ratios: number[]) => ratios[0]! >= 0.9 && ratios[1]! > 1 && ratios[2]! > 1;

/** Computes every row and verdict. */
export function judge(results: Results): Verdicts {
  const rows: Row[] = [];
  const problems = [...results.errors];

  for (const cell of results.fanout) {
    const label = `fan-out ${count(cell.clients)} clients, ${
      cell.payloadBytes >= KIB ? `${cell.payloadBytes / KIB} KiB` : `${cell.payloadBytes} B`
    }, ${cell.rate}/s`;
    checkRounds(label, cell.runs, problems);
    const cpu = ratiosOf(cell.runs, deliveriesPerCpu);
    rows.push(
      {
        scenario: label,
        measure: "deliveries per server CPU-second",
        values: valuesOf(cell.runs, deliveriesPerCpu, compact),
        ratios: cpu.text,
        target: AHEAD,
        verdict: verdict(aheadOk(cpu.ratios)),
      },
      {
        scenario: label,
        measure: "latency p50 / p99 (ms)",
        values: Object.fromEntries(TARGETS.map((target) => [
          target,
          `${fixed(spread(cell.runs[target].map((r) => r.p50)).median, 1)} / ${
            show(spread(cell.runs[target].map((r) => r.p99)), (v) => fixed(v, 1))
          }`,
        ])) as Record<Target, string>,
        ratios: ratiosOf(cell.runs, (r) => r.p99).text,
        target: "",
        verdict: "",
      },
    );
  }

  const kneeClients = results.sizes.knee.clients;
  const kneeRate = (run: { knee: number }) => run.knee;
  const knee = ratiosOf(results.knee, kneeRate);
  // A server that passed the top step has a knee of at least that rate: shown with a "+".
  const topped = (target: Target) => results.knee[target].some((run) => run.topReached);
  const kneeValues = valuesOf(results.knee, kneeRate, count);
  for (const target of TARGETS) if (topped(target)) kneeValues[target] += "+";
  rows.push({
    scenario: `the knee, ${count(kneeClients)} clients, 64 B`,
    measure: `highest events/s with p99 < ${results.sizes.knee.p99Ms} ms and no loss`,
    values: kneeValues,
    ratios: knee.text,
    target: AHEAD,
    verdict: TARGETS.some(topped) ? "" : verdict(aheadOk(knee.ratios)),
  });

  const { big, small } = results.targeted;
  const bigShape = `${count(big.herald[0]?.options.clients ?? 0)} conns`;
  const smallShape = `${count(small.herald[0]?.options.clients ?? 0)} conns`;
  checkRounds(`targeted ${bigShape}`, big, problems);
  checkRounds(`targeted ${smallShape}`, small, problems);
  for (const [label, runs] of [[smallShape, small], [bigShape, big]] as const) {
    rows.push({
      scenario: "targeted routing",
      measure: `server CPU per publish, ${label} (µs)`,
      values: valuesOf(runs, cpuPerPublishMicros, (v) => fixed(v, 0)),
      ratios: ratiosOf(runs, cpuPerPublishMicros).text,
      target: "",
      verdict: "",
    });
  }
  const scale = Object.fromEntries(TARGETS.map((target) => {
    const rounds = Math.min(big[target].length, small[target].length);
    return [
      target,
      Array.from(
        { length: rounds },
        (_, i) => cpuPerPublishMicros(big[target][i]!) / cpuPerPublishMicros(small[target][i]!),
      ),
    ];
  })) as Rounds<number>;
  const heraldScale = spread(scale.herald).median;
  rows.push({
    scenario: "targeted routing",
    measure: `CPU per publish, ${bigShape} / ${smallShape}`,
    values: valuesOf(scale, (v) => v, (v) => x(v)),
    ratios: "",
    target: "Herald <= 1.3x",
    verdict: verdict(heraldScale <= 1.3),
  });

  for (const { label, runs } of results.idle) {
    const perConnection = ratiosOf(runs, idlePerConnection);
    rows.push({
      scenario: "idle memory",
      measure: `RSS per idle connection, ${label} (KiB)`,
      values: valuesOf(runs, idlePerConnection, (v) => fixed(v / KIB)),
      ratios: perConnection.text,
      target: "Herald <= 1.1x floor",
      verdict: verdict(perConnection.ratios[0]! <= 1.1),
    });
  }

  const { baseline, stalled, stalledCount } = results.slow;
  const slowValues = (measure: (target: Target) => string) =>
    Object.fromEntries(TARGETS.map((target) => [target, measure(target)])) as Record<
      Target,
      string
    >;
  for (const target of TARGETS) {
    const [b, s] = [baseline[target], stalled[target]];
    if (b !== undefined) checkRun("slow consumers, no stall", b, problems);
    if (s !== undefined) checkRun("slow consumers, stalled", s, problems);
  }
  const extra = (target: Target) => {
    const [b, s] = [baseline[target], stalled[target]];
    return b === undefined || s === undefined ? NaN : growth(s) - growth(b);
  };
  const frameBytes = results.sizes.slow.payloadBytes + 200;
  const bound = stalledCount *
    (SETTINGS.socketHighWaterBytes.default + SETTINGS.clientBuffer.default * frameBytes);
  const heraldStalled = stalled.herald;
  const heraldBaseline = baseline.herald;
  const p99Ratio = heraldStalled !== undefined && heraldBaseline !== undefined
    ? heraldStalled.p99 / heraldBaseline.p99
    : NaN;
  const slow = `slow consumers, ${stalledCount} of ${results.sizes.slow.clients} stalled`;
  rows.push(
    {
      scenario: slow,
      measure: "extra peak RSS over the same load without stalls (MiB)",
      values: slowValues((t) => fixed(extra(t) / MIB)),
      ratios: OTHERS.map((other) => x(extra("herald") / extra(other))).join(" / "),
      target: `Herald <= ${fixed(bound / MIB)} MiB`,
      verdict: verdict(extra("herald") <= bound),
    },
    {
      scenario: slow,
      measure: "RSS slope, 2nd half of the stalled run (MiB/s)",
      values: slowValues((t) => {
        const run = stalled[t];
        return run === undefined ? "n/a" : fixed(lateSlope(run) / MIB, 2);
      }),
      ratios: "",
      target: "",
      verdict: "",
    },
    {
      scenario: slow,
      measure: "stalled clients the server closed",
      values: slowValues((t) => {
        if (t === "herald") {
          const closed = heraldStalled?.metrics["herald_slow_consumer_disconnects_total"] ?? 0;
          return `${closed} of ${stalledCount} (4008)`;
        }
        return "none (no bound)";
      }),
      ratios: "",
      target: "",
      verdict: "",
    },
    {
      scenario: slow,
      measure: "healthy clients' p99, stalled / no stall (ms)",
      values: slowValues((t) => {
        const [b, s] = [baseline[t], stalled[t]];
        return b === undefined || s === undefined ? "n/a" : `${fixed(s.p99)} / ${fixed(b.p99)}`;
      }),
      ratios: "",
      target: "Herald <= 1.2x",
      verdict: verdict(p99Ratio <= 1.2),
    },
  );

  const single = results.scaleOut.single;
  const layoutNames: Record<Layout, string> = {
    single: "1 node",
    parallel: "deno serve --parallel, 2 isolates",
    redis: "2 nodes on Redis",
    redis3: "3 nodes on Redis",
  };
  if (single !== null) checkRun("scale-out, 1 node", single, problems);
  for (const { layout, result } of results.scaleOut.runs) {
    checkRun(`scale-out ${layout}`, result, problems);
    const label = `scale-out (Herald): ${layoutNames[layout]}`;
    const added = single === null ? NaN : result.p99 - single.p99;
    const onRedis = layout !== "parallel";
    rows.push(
      {
        scenario: label,
        measure: "deliveries per CPU-second (all nodes), vs 1 node",
        values: onlyHerald(
          `${compact(deliveriesPerCpu(result))} vs ${
            single === null ? "n/a" : compact(deliveriesPerCpu(single))
          }`,
        ),
        ratios: single === null ? "" : x(deliveriesPerCpu(result) / deliveriesPerCpu(single)),
        target: "",
        verdict: "",
      },
      {
        scenario: label,
        measure: "p99 (ms) vs 1 node: added",
        values: onlyHerald(
          `${fixed(result.p99)} vs ${fixed(single?.p99 ?? NaN)}: ${added >= 0 ? "+" : ""}${
            fixed(added)
          }`,
        ),
        ratios: "",
        target: onRedis ? "adds < 5 ms" : "",
        verdict: onRedis ? verdict(added < 5) : "",
      },
    );
  }
  for (const reason of results.scaleOut.skipped) {
    rows.push({
      scenario: "scale-out (Herald)",
      measure: "skipped",
      values: onlyHerald(reason),
      ratios: "",
      target: "",
      verdict: "",
    });
  }
  return { rows, problems };
}
