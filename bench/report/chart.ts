/**
 * The SVG chart of the fan-out sweep: latency and throughput against client count.
 * @module
 */

import type { LoadResult } from "../_load.ts";
import type { Results } from "../scenarios.ts";
import { count, deliveriesPerCpu, fixed } from "./_format.ts";

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
