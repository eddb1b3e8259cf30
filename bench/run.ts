/**
 * The benchmark runner (`deno task bench`, `deno task bench:smoke`): runs every scenario against
 * the Deno floor, Herald, Node `ws` and socket.io, prints the table, and writes the generated
 * part of `docs/performance.md` with the chart `docs/bench-chart.svg` (the smoke run writes to
 * a temporary directory instead).
 *
 * Flags: `--smoke` (one small round of everything, about two minutes, for CI), `--quick` (full
 * counts, one round), `--out DIR` (where the report and chart go).
 * Exits 1 when a run broke (lost deliveries, failed publishes, a process that failed); missed
 * performance targets are reported, never a failure.
 * @module
 */

import { installPeers } from "./peers/spawn.ts";
import { describeMachine } from "./_proc.ts";
import { renderChart } from "./report/chart.ts";
import { judge } from "./report/judge.ts";
import { renderMarkdown } from "./report/markdown.ts";
import { renderTable } from "./report/table.ts";
import { FULL, QUICK, runScenarios, SMOKE } from "./scenarios.ts";

const CHART = "bench-chart.svg";
const REPORT = "performance.md";

async function main(args: readonly string[]): Promise<number> {
  const smoke = args.includes("--smoke");
  const sizes = smoke ? SMOKE : args.includes("--quick") ? QUICK : FULL;
  const outFlag = args.indexOf("--out");
  const outDir = outFlag >= 0 && args[outFlag + 1] !== undefined
    ? args[outFlag + 1]!
    : smoke
    ? await Deno.makeTempDir({ prefix: "herald-bench-smoke-" })
    : new URL("../docs/", import.meta.url).pathname;
  await installPeers((line) => console.log(line));
  const machine = await describeMachine();
  const startedAt = new Date();
  console.log(
    `Herald benchmark (${sizes.name}) on ${machine.cpu}, ${machine.cores} cores, ` +
      `Deno ${machine.deno}, Node ${machine.node}, load ${machine.load}`,
  );
  const results = await runScenarios(sizes, (line) => console.log(line));
  const verdicts = judge(results);
  const minutes = (Date.now() - startedAt.getTime()) / 60_000;
  console.log();
  console.log(renderTable(verdicts.rows));
  console.log();

  await Deno.mkdir(outDir, { recursive: true });
  const reportPath = `${outDir.replace(/\/$/, "")}/${REPORT}`;
  const chartPath = `${outDir.replace(/\/$/, "")}/${CHART}`;
  // A report written elsewhere (--out) keeps the hand-written parts of the repository's.
  const previous = await Deno.readTextFile(reportPath)
    .catch(() => Deno.readTextFile(new URL("../docs/performance.md", import.meta.url)))
    .catch(() => null);
  const command = smoke
    ? "deno task bench:smoke"
    : sizes === QUICK
    ? "deno task bench --quick"
    : "deno task bench";
  await Deno.writeTextFile(chartPath, renderChart(results));
  await Deno.writeTextFile(
    reportPath,
    renderMarkdown(previous, results, verdicts, {
      machine,
      command,
      chartFile: CHART,
      startedAt,
      minutes,
    }),
  );
  // Formatted by `deno fmt`, so that `deno fmt --check` in CI passes on the committed files.
  await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", reportPath, chartPath] })
    .output();
  console.log(`Wrote ${reportPath} and ${CHART} (${minutes.toFixed(1)} min)`);

  if (verdicts.problems.length > 0) {
    console.error(`Broken runs:\n  ${verdicts.problems.join("\n  ")}`);
    return 1;
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
