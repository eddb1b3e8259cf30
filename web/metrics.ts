/**
 * The hub-health charts' data: `/metrics` (Prometheus text) read into the four series the
 * dashboard plots, connections, event rate, drops and slow-consumer disconnects, each a bounded
 * ring of recent samples. Pure: the page fetches, this computes.
 * @module
 */

/** Samples kept per series (one per poll). */
export const METRIC_SAMPLES = 60;

/**
 * Sums every sample of each metric name (over its labels) in Prometheus text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sumMetrics } from "./metrics.ts";
 * const sums = sumMetrics(
 *   '# HELP x\nherald_connections 3\nherald_events_dropped_total{reason="a"} 2\nherald_events_dropped_total{reason="b"} 5\n',
 * );
 * assert.equal(sums.get("herald_connections"), 3);
 * assert.equal(sums.get("herald_events_dropped_total"), 7);
 * ```
 */
export function sumMetrics(text: string): Map<string, number> {
  const sums = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{.*\})?\s+(\S+)/.exec(line);
    if (match === null) continue;
    const value = Number(match[2]);
    if (!Number.isFinite(value)) continue;
    sums.set(match[1]!, (sums.get(match[1]!) ?? 0) + value);
  }
  return sums;
}

/** The series the hub-health view plots. */
export interface HubSeries {
  connections: number[];
  /** Events published per second between polls. */
  eventRate: number[];
  /** Events dropped per second between polls (any reason). */
  drops: number[];
  /** Slow-consumer disconnects since the hub started. */
  slowDisconnects: number[];
}

/**
 * Turns successive `/metrics` readings into {@linkcode HubSeries}: gauges as they are, counters
 * as rates between readings. A counter that went down (the hub restarted) counts from zero.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { HubMetrics } from "./metrics.ts";
 * const metrics = new HubMetrics();
 * metrics.add("herald_connections 2\nherald_events_published_total 10\n", 0);
 * metrics.add("herald_connections 3\nherald_events_published_total 30\n", 2000);
 * assert.deepEqual(metrics.series.connections, [2, 3]);
 * assert.deepEqual(metrics.series.eventRate, [10]);
 * ```
 */
export class HubMetrics {
  readonly series: HubSeries = { connections: [], eventRate: [], drops: [], slowDisconnects: [] };
  #last: { sums: Map<string, number>; at: number } | null = null;

  /** Adds one reading of `/metrics` taken at `at` (ms). */
  add(text: string, at: number): void {
    const sums = sumMetrics(text);
    const push = (series: number[], value: number) => {
      series.push(value);
      if (series.length > METRIC_SAMPLES) series.shift();
    };
    push(this.series.connections, sums.get("herald_connections") ?? 0);
    push(this.series.slowDisconnects, sums.get("herald_slow_consumer_disconnects_total") ?? 0);
    const last = this.#last;
    if (last !== null && at > last.at) {
      const rate = (name: string) => {
        const now = sums.get(name) ?? 0;
        const before = last.sums.get(name) ?? 0;
        return Math.round(((now >= before ? now - before : now) * 1000) / (at - last.at));
      };
      push(this.series.eventRate, rate("herald_events_published_total"));
      push(this.series.drops, rate("herald_events_dropped_total"));
    }
    this.#last = { sums, at };
  }
}
