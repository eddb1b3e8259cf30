/**
 * `docs/performance.md`: the hand-written header (everything above {@linkcode MARKER}) kept as
 * it is, then the last run, its table and the chart.
 * @module
 */

import type { Machine } from "../_proc.ts";
import { LARGE_PAYLOAD, type Results } from "../scenarios.ts";
import type { Verdicts } from "./judge.ts";
import { markdownTable } from "./table.ts";

/** The line between the hand-written header and the generated part of docs/performance.md. */
export const MARKER =
  "<!-- Everything below is written by `deno task bench`; edit above this line. -->";

/**
 * Writes the markdown report after the hand-written header of `previous` (the report being
 * replaced, or the repository's `docs/performance.md` for a new one).
 */
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
  const header = previous !== null && at >= 0 ? previous.slice(0, at).trimEnd() : "# Performance";
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
