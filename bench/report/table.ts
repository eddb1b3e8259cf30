/**
 * The results table: for the terminal and as markdown.
 * @module
 */

import type { Row } from "./judge.ts";

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

/** The table in markdown. */
export function markdownTable(rows: readonly Row[]): string {
  const escape = (cell: string) => cell.replaceAll("|", "\\|");
  return [
    `| ${COLUMNS.join(" | ")} |`,
    `| ${COLUMNS.map(() => "---").join(" | ")} |`,
    ...rows.map((row) => `| ${COLUMNS.map((column) => escape(row[column])).join(" | ")} |`),
  ].join("\n");
}
