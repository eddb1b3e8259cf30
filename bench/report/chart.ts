/**
 * The SVG chart of a run, all four servers side by side: deliveries per server CPU-second and
 * p99 latency against client count (64 B solid, 2 KiB dashed; medians over the rounds), and the
 * knee (median bar, whisker from the lowest to the highest round).
 * @module
 */

import { type LoadResult, type Target, TARGET_NAMES, TARGETS } from "../_load.ts";
import type { Results } from "../scenarios.ts";
import { compact, count, deliveriesPerCpu } from "./_format.ts";
import { spread } from "./judge.ts";

/** One colour per server, the same in every panel. */
const COLORS: Record<Target, string> = {
  floor: "#2c3e50",
  herald: "#c0392b",
  ws: "#27ae60",
  socketio: "#8e44ad",
};

const WIDTH = 400;
const HEIGHT = 300;
const TOP = 40;
const BOTTOM = HEIGHT - 40;

interface Series {
  readonly target: Target;
  readonly dashed: boolean;
  readonly points: readonly [number, number][];
}

function niceCeiling(value: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= value) return step * magnitude;
  return 10 * magnitude;
}

function frame(x0: number, title: string, unit: string, xLabel: string): string[] {
  const left = x0 + 60;
  return [
    `<text x="${x0 + WIDTH / 2}" y="20" text-anchor="middle" font-weight="bold">${title}</text>`,
    `<line x1="${left}" y1="${BOTTOM}" x2="${x0 + WIDTH - 20}" y2="${BOTTOM}" stroke="#333"/>`,
    `<line x1="${left}" y1="${TOP}" x2="${left}" y2="${BOTTOM}" stroke="#333"/>`,
    `<text x="${x0 + WIDTH / 2 + 20}" y="${HEIGHT - 8}" text-anchor="middle">${xLabel}</text>`,
    `<text x="${x0 + 14}" y="${(TOP + BOTTOM) / 2}" text-anchor="middle" transform="rotate(-90 ${
      x0 + 14
    } ${(TOP + BOTTOM) / 2})">${unit}</text>`,
  ];
}

function yAxis(x0: number, yMax: number, py: (y: number) => number): string[] {
  const left = x0 + 60;
  const parts: string[] = [];
  for (let step = 0; step <= 4; step++) {
    const y = (yMax * step) / 4;
    parts.push(
      `<text x="${left - 6}" y="${(py(y) + 4).toFixed(1)}" text-anchor="end">${compact(y)}</text>`,
      `<line x1="${left}" y1="${py(y).toFixed(1)}" x2="${x0 + WIDTH - 20}" y2="${
        py(y).toFixed(1)
      }" stroke="#ddd"/>`,
    );
  }
  return parts;
}

function linePanel(
  x0: number,
  title: string,
  unit: string,
  series: readonly Series[],
  xs: readonly number[],
): string {
  const left = x0 + 60;
  const right = x0 + WIDTH - 20;
  const values = series.flatMap((s) => s.points.map(([, y]) => y)).filter(Number.isFinite);
  const yMax = niceCeiling(Math.max(...values, 1e-9));
  const logMin = Math.log(Math.min(...xs));
  const logMax = Math.log(Math.max(...xs));
  const px = (x: number) =>
    logMax === logMin
      ? (left + right) / 2
      : left + 30 + ((Math.log(x) - logMin) / (logMax - logMin)) * (right - left - 60);
  const py = (y: number) => BOTTOM - (y / yMax) * (BOTTOM - TOP);
  const parts = [...frame(x0, title, unit, "clients (log scale)"), ...yAxis(x0, yMax, py)];
  for (const x of xs) {
    parts.push(
      `<text x="${px(x).toFixed(1)}" y="${BOTTOM + 16}" text-anchor="middle">${count(x)}</text>`,
    );
  }
  for (const s of series) {
    const points = s.points.filter(([, y]) => Number.isFinite(y));
    const dash = s.dashed ? ' stroke-dasharray="5 4"' : "";
    parts.push(
      `<polyline fill="none" stroke="${COLORS[s.target]}" stroke-width="2"${dash} points="${
        points.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(" ")
      }"/>`,
      ...points.map(([x, y]) =>
        `<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${
          COLORS[s.target]
        }"/>`
      ),
    );
  }
  return parts.join("\n");
}

function kneePanel(x0: number, results: Results): string {
  const knees = TARGETS.map((target) => ({
    target,
    s: spread(results.knee[target].map((run) => run.knee)),
  }));
  const yMax = niceCeiling(Math.max(...knees.map(({ s }) => s.max).filter(Number.isFinite), 1));
  const py = (y: number) => BOTTOM - (y / yMax) * (BOTTOM - TOP);
  const parts = [
    ...frame(
      x0,
      `The knee (${
        count(results.sizes.knee.clients)
      } clients, p99 &lt; ${results.sizes.knee.p99Ms} ms)`,
      "events/s",
      "server",
    ),
    ...yAxis(x0, yMax, py),
  ];
  const slot = (WIDTH - 100) / knees.length;
  knees.forEach(({ target, s }, index) => {
    const cx = x0 + 70 + slot * (index + 0.5);
    const color = COLORS[target];
    if (Number.isFinite(s.median)) {
      parts.push(
        `<rect x="${(cx - slot * 0.3).toFixed(1)}" y="${py(s.median).toFixed(1)}" width="${
          (slot * 0.6).toFixed(1)
        }" height="${(BOTTOM - py(s.median)).toFixed(1)}" fill="${color}"/>`,
        `<line x1="${cx.toFixed(1)}" y1="${py(s.min).toFixed(1)}" x2="${cx.toFixed(1)}" y2="${
          py(s.max).toFixed(1)
        }" stroke="#000"/>`,
        `<text x="${cx.toFixed(1)}" y="${(py(s.max) - 4).toFixed(1)}" text-anchor="middle">${
          count(s.median)
        }</text>`,
      );
    }
    parts.push(
      `<text x="${cx.toFixed(1)}" y="${BOTTOM + 16}" text-anchor="middle">${
        TARGET_NAMES[target]
      }</text>`,
    );
  });
  return parts.join("\n");
}

function legend(y: number): string {
  const parts = TARGETS.map((target, index) => {
    const x = 80 + index * 150;
    return `<line x1="${x}" y1="${y}" x2="${x + 24}" y2="${y}" stroke="${
      COLORS[target]
    }" stroke-width="3"/><text x="${x + 30}" y="${y + 4}">${TARGET_NAMES[target]}</text>`;
  });
  parts.push(
    `<text x="700" y="${y + 4}">solid: 64 B payloads, dashed: 2 KiB; medians of the rounds</text>`,
  );
  return parts.join("\n");
}

/** The chart: throughput and p99 against client count, and the knee, for every server. */
export function renderChart(results: Results): string {
  const xs = [...new Set(results.fanout.map((cell) => cell.clients))];
  const series = (pick: (r: LoadResult) => number): Series[] =>
    TARGETS.flatMap((target) =>
      [...new Set(results.fanout.map((cell) => cell.payloadBytes))].map((payload, index) => ({
        target,
        dashed: index > 0,
        points: results.fanout.filter((cell) => cell.payloadBytes === payload).map((cell) =>
          [cell.clients, spread(cell.runs[target].map(pick)).median] as [number, number]
        ),
      }))
    );
  const width = WIDTH * 3;
  const height = HEIGHT + 30;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">
<rect width="${width}" height="${height}" fill="white"/>
${
    linePanel(
      0,
      "Deliveries per server CPU-second",
      "deliveries / CPU-s",
      series(deliveriesPerCpu),
      xs,
    )
  }
${linePanel(WIDTH, "Fan-out latency p99", "ms", series((r) => r.p99), xs)}
${kneePanel(WIDTH * 2, results)}
${legend(HEIGHT + 12)}
</svg>
`;
}
