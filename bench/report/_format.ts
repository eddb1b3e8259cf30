/**
 * Number formatting and the measures shared by the report's parts, private to this folder.
 * @module
 */

import type { LoadResult } from "../_load.ts";

export const KIB = 1024;
export const MIB = 1024 * KIB;

export const fixed = (value: number, digits = 1) =>
  Number.isFinite(value) ? value.toFixed(digits) : "n/a";
export const count = (value: number) => Math.round(value).toLocaleString("en-US");

/** `123k`, `1.2M`: three significant figures at most. */
export function compact(value: number): string {
  if (!Number.isFinite(value)) return "n/a";
  if (value >= 1e6) return `${(value / 1e6).toPrecision(3)}M`;
  if (value >= 1e3) return `${Math.round(value / 1e3)}k`;
  return value >= 10 ? String(Math.round(value)) : value.toFixed(1);
}

/** Events delivered per second of the server's CPU time. */
export const deliveriesPerCpu = (r: LoadResult) => r.delivered / Math.max(r.cpuSeconds, 0.01);
