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

/** Events delivered per second of the server's CPU time. */
export const deliveriesPerCpu = (r: LoadResult) => r.delivered / Math.max(r.cpuSeconds, 0.01);
