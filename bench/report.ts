/**
 * Turns scenario results into verdicts, a console table, `docs/performance.md` and the SVG
 * chart. The markdown keeps its hand-written header (everything above {@linkcode MARKER}).
 * @module
 */

import { SETTINGS } from "../server/config.ts";
import type { Layout, LoadResult } from "./_load.ts";
import type { Machine } from "./_proc.ts";
import { LARGE_PAYLOAD, type Pair, type Results } from "./scenarios.ts";

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

const KIB = 1024;
const MIB = 1024 * KIB;

const fixed = (value: number, digits = 1) => Number.isFinite(value) ? value.toFixed(digits) : "n/a";
const count = (value: number) => Math.round(value).toLocaleString("en-US");
const ratio = (a: number, b: number) => b === 0 ? "n/a" : `${(a / b).toFixed(2)}x`;
const verdict = (ok: boolean): "pass" | "miss" => ok ? "pass" : "miss";

const deliveriesPerSecond = (r: LoadResult) => r.delivered / r.publishSeconds;
const deliveriesPerCpu = (r: LoadResult) => r.delivered / Math.max(r.cpuSeconds, 0.01);
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

const COLUMNS = ["scenario", "measure", "herald", "floor", "ratio", "target", "verdict"] as const;

/** The table for the terminal. */
export function renderTable(rows: readonly Row[]): string {
  const widths = COLUMNS.map((column) =>
    Math.min(60, Math.max(column.length, ...rows.map((row) => row[column].length)))
  );
  const line = (cells: readonly string[]) =>
    cells.map((cell, index) => cell.slice(0, 60).padEnd(widths[index]!)).join("  ").trimEnd();
  return [
    line(COLUMNS),
    line(widths.map((width) => "-".repeat(width))),
    ...rows.map((row) => line(COLUMNS.map((column) => row[column]))),
  ].join("\n");
}

function markdownTable(rows: readonly Row[]): string {
  const escape = (cell: string) => cell.replaceAll("|", "\\|");
  return [
    `| ${COLUMNS.join(" | ")} |`,
    `| ${COLUMNS.map(() => "---").join(" | ")} |`,
    ...rows.map((row) => `| ${COLUMNS.map((column) => escape(row[column])).join(" | ")} |`),
  ].join("\n");
}

/** The line between the hand-written header and the generated part of docs/performance.md. */
export const MARKER =
  "<!-- Everything below is written by `deno task bench`; edit above this line. -->";

/** The header written when docs/performance.md does not exist yet. */
export const DEFAULT_HEADER = `# Performance

How much Herald costs compared with the least a Deno server can do, measured by the harness in
\`bench/\`. Numbers move between machines; the ratios to the floor, measured in the same run on
the same machine, are what to read.

## Running it

- \`deno task bench\`: the full run (about five minutes on two cores). Prints the table and
  rewrites the generated part of this file and \`docs/bench-chart.svg\`.
- \`deno task bench:smoke\`: a few seconds with small counts, for CI. Writes nothing under
  \`docs/\`; exits non-zero when a scenario breaks (lost or duplicated deliveries, failed
  publishes, a reading client disconnected, a process that fails). It never judges timing.
- \`deno task bench --out DIR\`: write the report and chart to \`DIR\` instead of \`docs/\`.

Run the full bench on a quiet machine: everything shares the cores with the server under test.

## Method

- The server under test is its own process (\`deno run main.ts\`, spawned like the test harness
  does). Receivers (\`bench/receiver.ts\`, up to 2,500 WebSocket clients each) and the publisher
  (\`bench/publisher.ts\`, one event per \`POST /events\`) are other Deno processes on loopback.
- The server's CPU time is user + system time of all its threads from \`/proc/<pid>/stat\`, from
  the first publish until the last delivery arrived. Its memory is \`VmRSS\` from
  \`/proc/<pid>/status\`.
- Latency is publish-to-delivery: the publisher puts its wall-clock time in \`payload.t\` and the
  receiver subtracts it from its own clock when the frame arrives (both on this machine).
  Percentiles come from merged 2%-wide histograms.
- Every run starts a fresh server, connects its clients, publishes a short warm-up at the same
  rate (so the JIT is warm), then measures. Herald runs with its default settings.
- The runs with a CPU target (fan-out at 1,000 clients, targeted routing) alternate Herald and
  the floor for two rounds and keep, for each, the round with the least server CPU: the one least
  disturbed by other work on the machine. The other runs are single.
- The floor (\`bench/floor.ts\`) takes the same \`POST /events\` bodies and sends the same frame
  shape to every socket: no auth, validation, subscriptions, queues, back-pressure or history.
  Its sockets get the same runtime heartbeat (\`idleTimeout\`) as Herald's. It runs the same load
  right after Herald, in the same invocation.

## Scenarios

1. **Fan-out**: every client subscribes to \`*\`; 50 events/s with 64-byte payloads at 100, 300
   and 1,000 clients, and 2 KiB payloads at 1,000. Deliveries per second, deliveries per CPU-second
   of the server, p50/p99 latency, lost deliveries (must be 0). Target: deliveries per CPU-second
   at least 0.85x the floor's.
2. **Targeted routing**: 10,000 connections, each subscribed with \`?topic=*&appId=app-N\` to one of
   1,000 apps (10 per app); 500 events/s round-robin over the apps, so each event reaches 10
   clients. Compared with 100 connections over 10 apps (again 10 per app and 10 deliveries per
   event), so only the number of connections held changes. Target: Herald's CPU per publish with
   10,000 connections at most 1.5x its figure with 100. The floor routes by appId with one Map
   lookup here (it could not run the scenario otherwise).
3. **Idle capacity**: RSS of the server with every client connected and idle, minus its RSS
   before (after one warm-up connection came and went), per connection, at 1,000 (the fan-out run)
   and 10,000 (the targeted run) connections. Target: at most 12 KiB per connection. Deno's own
   per-socket cost is in both numbers; the floor shows it.
4. **Slow consumers**: 10% of the clients are raw TCP sockets that complete the WebSocket
   handshake and never read. The kernel holds several MiB per socket on loopback before the server
   notices, so this scenario uses 8 KiB payloads at 100 events/s to get past that within seconds.
   Herald must keep its extra memory within its configured bounds (per stalled client: the socket
   high-water mark plus a full queue) and keep healthy clients' p99 within 20% of the same load
   with no stalled client; the floor's memory keeps growing.
5. **Scale-out**: the 1,000-client fan-out (64 B) through \`deno serve --parallel\` (two isolates
   on the broadcast bus) and through two and three Herald processes on one Redis (\`HERALD_BUS=redis\`, a
   \`redis-server\` the bench starts), clients spread over the nodes, the publisher on one. CPU is
   summed over the nodes and compared with the single node of scenario 1; the floor cannot scale
   out. A layout whose bus or \`redis-server\` is missing is skipped with the reason printed.
`;

/** Writes the markdown report, keeping the hand-written header of an existing file. */
export function renderMarkdown(
  previous: string | null,
  results: Results,
  verdicts: Verdicts,
  machine: Machine,
  command: string,
  chartFile: string,
  startedAt: Date,
  minutes: number,
): string {
  const at = previous?.indexOf(MARKER) ?? -1;
  const header = previous !== null && at >= 0
    ? previous.slice(0, at).trimEnd()
    : DEFAULT_HEADER.trimEnd();
  const large = results.fanoutLarge.herald.options.payloadBytes === LARGE_PAYLOAD ? "2 KiB" : "";
  return `${header}

${MARKER}

## Last run

- When: ${startedAt.toISOString()} (${minutes.toFixed(1)} min), \`${command}\`
- Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memory} RAM, Linux ${machine.kernel}
- Runtime: Deno ${machine.deno} (V8 ${machine.v8})
- Load average when it started: ${machine.load}
${
    verdicts.problems.length === 0
      ? "- Every scenario ran clean: no lost, duplicated or failed deliveries."
      : verdicts.problems.map((problem) => `- PROBLEM: ${problem}`).join("\n")
  }

${markdownTable(verdicts.rows)}

![Fan-out latency and throughput against client count](${chartFile})

The chart plots the 64-byte fan-out sweep${large ? ` (the ${large} run is in the table only)` : ""}.
`;
}

interface Series {
  readonly name: string;
  readonly color: string;
  readonly dashed: boolean;
  readonly points: readonly [number, number][];
}

function panel(
  x0: number,
  title: string,
  unit: string,
  series: readonly Series[],
  xs: readonly number[],
): string {
  const width = 400;
  const height = 260;
  const left = x0 + 60;
  const right = x0 + width - 20;
  const top = 40;
  const bottom = height - 40;
  const values = series.flatMap((s) => s.points.map(([, y]) => y)).filter(Number.isFinite);
  const yMax = niceCeiling(Math.max(...values, 1e-9));
  const logMin = Math.log(Math.min(...xs));
  const logMax = Math.log(Math.max(...xs));
  const span = right - left - 40;
  const px = (x: number) =>
    logMax === logMin
      ? (left + right) / 2
      : left + 20 + ((Math.log(x) - logMin) / (logMax - logMin)) * span;
  const py = (y: number) => bottom - (y / yMax) * (bottom - top);
  const parts = [
    `<text x="${x0 + width / 2}" y="20" text-anchor="middle" font-weight="bold">${title}</text>`,
    `<line x1="${left}" y1="${bottom}" x2="${right}" y2="${bottom}" stroke="#333"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${bottom}" stroke="#333"/>`,
    `<text x="${(left + right) / 2}" y="${
      height - 8
    }" text-anchor="middle">clients (log scale)</text>`,
    `<text x="${x0 + 14}" y="${(top + bottom) / 2}" text-anchor="middle" transform="rotate(-90 ${
      x0 + 14
    } ${(top + bottom) / 2})">${unit}</text>`,
  ];
  for (const x of xs) {
    parts.push(
      `<text x="${px(x).toFixed(1)}" y="${bottom + 16}" text-anchor="middle">${count(x)}</text>`,
      `<line x1="${px(x).toFixed(1)}" y1="${bottom}" x2="${px(x).toFixed(1)}" y2="${
        bottom + 4
      }" stroke="#333"/>`,
    );
  }
  for (let step = 0; step <= 4; step++) {
    const y = (yMax * step) / 4;
    parts.push(
      `<text x="${left - 6}" y="${(py(y) + 4).toFixed(1)}" text-anchor="end">${compact(y)}</text>`,
      `<line x1="${left}" y1="${py(y).toFixed(1)}" x2="${right}" y2="${
        py(y).toFixed(1)
      }" stroke="#ddd"/>`,
    );
  }
  series.forEach((s, index) => {
    const points = s.points.filter(([, y]) => Number.isFinite(y));
    const dash = s.dashed ? ` stroke-dasharray="5 3"` : "";
    parts.push(
      `<polyline fill="none" stroke="${s.color}" stroke-width="2"${dash} points="${
        points.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(" ")
      }"/>`,
      ...points.map(([x, y]) =>
        `<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${s.color}"/>`
      ),
      `<line x1="${left + 10}" y1="${top + 8 + index * 16}" x2="${left + 30}" y2="${
        top + 8 + index * 16
      }" stroke="${s.color}" stroke-width="2"${dash}/>`,
      `<text x="${left + 36}" y="${top + 12 + index * 16}">${s.name}</text>`,
    );
  });
  return parts.join("\n");
}

function niceCeiling(value: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= value) return step * magnitude;
  return 10 * magnitude;
}

function compact(value: number): string {
  if (value >= 1e6) return `${fixed(value / 1e6)}M`;
  if (value >= 1e3) return `${fixed(value / 1e3)}k`;
  return value >= 10 ? String(Math.round(value)) : fixed(value, 1);
}

/** The chart: fan-out latency (p50, p99) and deliveries per CPU-second against client count. */
export function renderChart(results: Results): string {
  const xs = results.fanout.map((point) => point.clients);
  const of = (target: "herald" | "floor", pick: (r: LoadResult) => number) =>
    results.fanout.map((point) => [point.clients, pick(point.pair[target])] as [number, number]);
  const HERALD = "#c0392b";
  const FLOOR = "#2c3e50";
  const latency: Series[] = [
    { name: "Herald p99", color: HERALD, dashed: false, points: of("herald", (r) => r.p99) },
    { name: "Herald p50", color: HERALD, dashed: true, points: of("herald", (r) => r.p50) },
    { name: "floor p99", color: FLOOR, dashed: false, points: of("floor", (r) => r.p99) },
    { name: "floor p50", color: FLOOR, dashed: true, points: of("floor", (r) => r.p50) },
  ];
  const throughput: Series[] = [
    { name: "Herald", color: HERALD, dashed: false, points: of("herald", deliveriesPerCpu) },
    { name: "floor", color: FLOOR, dashed: false, points: of("floor", deliveriesPerCpu) },
  ];
  return `<svg xmlns="http://www.w3.org/2000/svg" width="800" height="260" viewBox="0 0 800 260" font-family="sans-serif" font-size="11">
<rect width="800" height="260" fill="white"/>
${panel(0, "Fan-out latency (64 B, 50 events/s)", "ms", latency, xs)}
${panel(400, "Deliveries per server CPU-second", "deliveries / CPU-s", throughput, xs)}
</svg>
`;
}
