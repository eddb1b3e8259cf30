/**
 * The results table: for the terminal and as markdown, one column per server.
 * @module
 */

import { TARGET_NAMES, TARGETS } from "../_load.ts";
import type { Row } from "./judge.ts";

const HEADERS = [
  "scenario",
  "measure",
  ...TARGETS.map((target) => TARGET_NAMES[target]),
  "Herald vs floor / ws / socket.io",
  "target",
  "verdict",
];

const cells = (row: Row) => [
  row.scenario,
  row.measure,
  ...TARGETS.map((target) => row.values[target]),
  row.ratios,
  row.target,
  row.verdict,
];

/** The table for the terminal. */
export function renderTable(rows: readonly Row[]): string {
  const all = [HEADERS, ...rows.map(cells)];
  const widths = HEADERS.map((_, column) =>
    Math.min(48, Math.max(...all.map((line) => line[column]!.length)))
  );
  const line = (line: readonly string[]) =>
    line.map((cell, index) => cell.slice(0, 48).padEnd(widths[index]!)).join("  ").trimEnd();
  return [
    line(HEADERS),
    line(widths.map((width) => "-".repeat(width))),
    ...rows.map(cells).map(line),
  ]
    .join("\n");
}

/** The table in markdown. */
export function markdownTable(rows: readonly Row[]): string {
  const escape = (cell: string) => cell.replaceAll("|", "\\|");
  return [
    `| ${HEADERS.join(" | ")} |`,
    `| ${HEADERS.map(() => "---").join(" | ")} |`,
    ...rows.map((row) => `| ${cells(row).map(escape).join(" | ")} |`),
  ].join("\n");
}
