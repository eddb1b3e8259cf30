/**
 * `docs/performance.md`: the generated part (between {@linkcode BEGIN} and {@linkcode END}: the
 * run, its side-by-side table and the chart) replaced, everything around it kept as written.
 * @module
 */

import type { Machine } from "../_proc.ts";
import type { Results } from "../scenarios.ts";
import type { Verdicts } from "./judge.ts";
import { markdownTable } from "./table.ts";

/** Where the generated part of docs/performance.md starts. */
export const BEGIN = "<!-- Written by `deno task bench` from here to the end marker. -->";
/** Where it ends; edit everything outside. */
export const END = "<!-- End of what `deno task bench` writes. -->";

/** What the run was. */
export interface RunInfo {
  readonly machine: Machine;
  readonly command: string;
  readonly chartFile: string;
  readonly startedAt: Date;
  readonly minutes: number;
}

/** The generated part, markers included. */
export function renderGenerated(results: Results, verdicts: Verdicts, run: RunInfo): string {
  const { machine, sizes } = { machine: run.machine, sizes: results.sizes };
  return `${BEGIN}

## Side by side

- Command: \`${run.command}\` (${sizes.name} sizes, ${sizes.rounds} round${
    sizes.rounds === 1 ? "" : "s"
  } of every side-by-side scenario, servers in rotated order), ${run.startedAt.toISOString()}, ${
    run.minutes.toFixed(1)
  } min
- Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memory} RAM, Linux ${machine.kernel};
  load average ${machine.load} at the start
- Runtimes: Deno ${machine.deno} (V8 ${machine.v8}) for Herald and the floor; Node ${machine.node}
  for the peers (${machine.peers})
- Every figure is the median over the rounds, with the range in parentheses; "Herald vs" is the
  median of the per-round ratios (higher is better for throughput and the knee, lower for
  latency, CPU and memory).
${
    verdicts.problems.length === 0
      ? "- Every run was clean: no lost, duplicated or failed deliveries, no reading client dropped."
      : verdicts.problems.map((problem) => `- PROBLEM: ${problem}`).join("\n")
  }

${markdownTable(verdicts.rows)}

![Deliveries per CPU-second and p99 against clients, and the knee, for all four servers](${run.chartFile})

${END}`;
}

/**
 * The report: `previous` (the file being replaced, or the repository's docs/performance.md)
 * with its generated part replaced, or after its title when it has none yet.
 */
export function renderMarkdown(
  previous: string | null,
  results: Results,
  verdicts: Verdicts,
  run: RunInfo,
): string {
  const generated = renderGenerated(results, verdicts, run);
  const text = previous ?? "# Performance\n";
  const begin = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (begin >= 0 && end > begin) {
    return `${text.slice(0, begin)}${generated}${text.slice(end + END.length)}`;
  }
  const titleEnd = text.indexOf("\n") + 1;
  return `${text.slice(0, titleEnd)}\n${generated}\n\n${text.slice(titleEnd).trimStart()}`;
}
