/**
 * Judges scenario results: one row per measure with Herald, the floor, their ratio, the target
 * and the verdict, plus what broke in a run (loss, failed publishes, dropped clients).
 * @module
 */

import { SETTINGS } from "../../server/config.ts";
import type { Layout, LoadResult } from "../_load.ts";
import type { Pair, Results } from "../scenarios.ts";
import { count, deliveriesPerCpu, fixed, KIB, MIB } from "./_format.ts";

/** One line of the results table. */
export interface Row {
  readonly scenario: string;
  readonly measure: string;
  readonly herald: string;
  readonly floor: string;
  /** Herald / floor, or the scenario's own ratio. */
  readonly ratio: string;
  readonly target: string;
  readonly verdict: "pass" | "miss" | "";
}

/** Rows plus what broke (loss, failed publishes, dropped clients): a broken run fails CI. */
export interface Verdicts {
  readonly rows: Row[];
  readonly problems: string[];
}

const ratio = (a: number, b: number) => b === 0 ? "n/a" : `${(a / b).toFixed(2)}x`;
const verdict = (ok: boolean): "pass" | "miss" => ok ? "pass" : "miss";

const deliveriesPerSecond = (r: LoadResult) => r.delivered / r.publishSeconds;
const cpuPerPublishMicros = (r: LoadResult) => (r.cpuSeconds / Math.max(r.sent, 1)) * 1e6;
const idlePerConnection = (r: LoadResult) =>
  (r.idleRss - r.baselineRss) / (r.options.clients + r.options.stalled);
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
  const where = `${label} (${r.target})`;
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

/** Computes every row and verdict. */
export function judge(results: Results): Verdicts {
  const rows: Row[] = [];
  const problems: string[] = [];
  const headline = results.sizes.fanoutClients.at(-1)!;

  const fanoutRows = (label: string, p: Pair, targeted: boolean) => {
    checkRun(label, p.herald, problems);
    checkRun(label, p.floor, problems);
    const { herald, floor } = p;
    const cpuRatio = deliveriesPerCpu(herald) / deliveriesPerCpu(floor);
    rows.push(
      {
        scenario: label,
        measure: "deliveries/s",
        herald: count(deliveriesPerSecond(herald)),
        floor: count(deliveriesPerSecond(floor)),
        ratio: ratio(deliveriesPerSecond(herald), deliveriesPerSecond(floor)),
        target: "",
        verdict: "",
      },
      {
        scenario: label,
        measure: "deliveries per hub CPU-second",
        herald: count(deliveriesPerCpu(herald)),
        floor: count(deliveriesPerCpu(floor)),
        ratio: `${cpuRatio.toFixed(3)}x`,
        target: targeted ? ">= 0.85x floor" : "",
        verdict: targeted ? verdict(cpuRatio >= 0.85) : "",
      },
      {
        scenario: label,
        measure: "latency p50 / p99 (ms)",
        herald: `${fixed(herald.p50, 2)} / ${fixed(herald.p99, 2)}`,
        floor: `${fixed(floor.p50, 2)} / ${fixed(floor.p99, 2)}`,
        ratio: ratio(herald.p99, floor.p99),
        target: "",
        verdict: "",
      },
      {
        scenario: label,
        measure: "lost deliveries",
        herald: count(herald.lost),
        floor: count(floor.lost),
        ratio: "",
        target: "0",
        verdict: verdict(herald.lost === 0),
      },
    );
  };
  for (const { clients, pair } of results.fanout) {
    fanoutRows(`1. fan-out ${clients} clients, 64 B`, pair, clients === headline);
  }
  fanoutRows(`1. fan-out ${headline} clients, 2 KiB`, results.fanoutLarge, true);

  const { big, small } = results.targeted;
  const bigShape = `${count(big.herald.options.clients)} conns`;
  const smallShape = `${count(small.herald.options.clients)} conns`;
  for (const [label, p] of [[bigShape, big], [smallShape, small]] as const) {
    checkRun(`2. targeted ${label}`, p.herald, problems);
    checkRun(`2. targeted ${label}`, p.floor, problems);
  }
  for (const [label, p] of [[smallShape, small], [bigShape, big]] as const) {
    rows.push({
      scenario: "2. targeted routing",
      measure: `hub CPU per publish, ${label} (µs)`,
      herald: fixed(cpuPerPublishMicros(p.herald)),
      floor: fixed(cpuPerPublishMicros(p.floor)),
      ratio: ratio(cpuPerPublishMicros(p.herald), cpuPerPublishMicros(p.floor)),
      target: "",
      verdict: "",
    });
  }
  const heraldScale = cpuPerPublishMicros(big.herald) / cpuPerPublishMicros(small.herald);
  const floorScale = cpuPerPublishMicros(big.floor) / cpuPerPublishMicros(small.floor);
  rows.push({
    scenario: "2. targeted routing",
    measure: `CPU per publish, ${bigShape} / ${smallShape}`,
    herald: `${heraldScale.toFixed(2)}x`,
    floor: `${floorScale.toFixed(2)}x`,
    ratio: "",
    target: "herald <= 1.5x",
    verdict: verdict(heraldScale <= 1.5),
  });

  const idleSources = [results.fanout.at(-1)!.pair, big];
  for (const p of idleSources) {
    const herald = idlePerConnection(p.herald);
    const floor = idlePerConnection(p.floor);
    rows.push({
      scenario: "3. idle capacity",
      measure: `RSS per idle connection at ${count(p.herald.options.clients)} (KiB)`,
      herald: fixed(herald / KIB),
      floor: fixed(floor / KIB),
      ratio: ratio(herald, floor),
      target: "herald <= 12 KiB",
      verdict: verdict(herald <= 12 * KIB),
    });
  }

  const { baseline, stalled, stalledCount } = results.slow;
  for (const [label, p] of [["no stall", baseline], ["stalled", stalled]] as const) {
    checkRun(`4. slow consumers, ${label}`, p.herald, problems);
    checkRun(`4. slow consumers, ${label}`, p.floor, problems);
  }
  const frameBytes = stalled.herald.options.payloadBytes + 200;
  const bound = stalledCount *
    (SETTINGS.socketHighWaterBytes.default + SETTINGS.clientBuffer.default * frameBytes);
  const heraldExtra = growth(stalled.herald) - growth(baseline.herald);
  const floorExtra = growth(stalled.floor) - growth(baseline.floor);
  const disconnected = stalled.herald.metrics["herald_slow_consumer_disconnects_total"] ?? 0;
  rows.push(
    {
      scenario: "4. slow consumers",
      measure: `extra RSS with ${stalledCount} stalled (MiB)`,
      herald: fixed(heraldExtra / MIB),
      floor: fixed(floorExtra / MIB),
      ratio: ratio(heraldExtra, floorExtra),
      target: `herald <= ${fixed(bound / MIB)} MiB`,
      verdict: verdict(heraldExtra <= bound),
    },
    {
      scenario: "4. slow consumers",
      measure: "RSS slope, 2nd half of the stalled run (MiB/s)",
      herald: fixed(lateSlope(stalled.herald) / MIB, 2),
      floor: fixed(lateSlope(stalled.floor) / MIB, 2),
      ratio: "",
      target: "",
      verdict: "",
    },
    {
      scenario: "4. slow consumers",
      measure: "stalled clients disconnected (4008)",
      herald: `${disconnected} of ${stalledCount}`,
      floor: "never",
      ratio: "",
      target: "",
      verdict: "",
    },
    {
      scenario: "4. slow consumers",
      measure: "healthy p99 stalled / no stall (ms)",
      herald: `${fixed(stalled.herald.p99, 2)} / ${fixed(baseline.herald.p99, 2)}`,
      floor: `${fixed(stalled.floor.p99, 2)} / ${fixed(baseline.floor.p99, 2)}`,
      ratio: ratio(stalled.herald.p99, baseline.herald.p99),
      target: "herald <= 1.2x",
      verdict: verdict(stalled.herald.p99 <= 1.2 * baseline.herald.p99),
    },
  );

  const single = results.fanout.at(-1)!.pair.herald;
  const layoutNames: Record<Layout, string> = {
    single: "1 node",
    parallel: "deno serve --parallel, 2 isolates",
    redis: "2 nodes on Redis",
    redis3: "3 nodes on Redis",
  };
  for (const { layout, result } of results.scaleOut.runs) {
    checkRun(`5. scale-out ${layout}`, result, problems);
    const label = `5. scale-out: ${layoutNames[layout]}`;
    rows.push(
      {
        scenario: label,
        measure: "deliveries per CPU-second (all nodes) vs 1 node",
        herald: count(deliveriesPerCpu(result)),
        floor: `1 node: ${count(deliveriesPerCpu(single))}`,
        ratio: ratio(deliveriesPerCpu(result), deliveriesPerCpu(single)),
        target: "",
        verdict: "",
      },
      {
        scenario: label,
        measure: "latency p50 / p99 (ms) vs 1 node",
        herald: `${fixed(result.p50, 2)} / ${fixed(result.p99, 2)}`,
        floor: `1 node: ${fixed(single.p50, 2)} / ${fixed(single.p99, 2)}`,
        ratio: ratio(result.p99, single.p99),
        target: "",
        verdict: "",
      },
      {
        scenario: label,
        measure: "lost deliveries",
        herald: count(result.lost),
        floor: "",
        ratio: "",
        target: "0",
        verdict: verdict(result.lost === 0),
      },
    );
  }
  for (const reason of results.scaleOut.skipped) {
    rows.push({
      scenario: "5. scale-out",
      measure: "skipped",
      herald: reason,
      floor: "",
      ratio: "",
      target: "",
      verdict: "",
    });
  }
  return { rows, problems };
}
