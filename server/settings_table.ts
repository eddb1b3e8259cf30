/**
 * Writes the settings table from `SETTINGS` into the README and docs/operations.md, between
 * `<!-- settings:start -->` and `<!-- settings:end -->`, so the docs cannot drift from the code.
 * Run with `deno task docs`; `tests/docs_test.ts` fails when the files are stale.
 * @module
 */

import { SETTINGS } from "./config.ts";

const START = "<!-- settings:start -->";
const END = "<!-- settings:end -->";

/** The files that carry the table. */
export const SETTINGS_TABLE_FILES = ["README.md", "docs/operations.md"] as const;

function shownDefault(value: unknown): string {
  if (value === undefined) return "(generated)";
  if (value === null) return "(any)";
  if (Array.isArray(value)) return value.length === 0 ? "(none)" : value.join(",");
  if (typeof value === "boolean") return value ? "1" : "0";
  return String(value);
}

/** The settings as a Markdown table. */
export function settingsTable(): string {
  const rows = Object.values(SETTINGS).map((setting) => {
    const names = "flag" in setting
      ? `\`${setting.env}\` / \`${setting.flag}\``
      : `\`${setting.env}\``;
    return `| ${names} | \`${shownDefault(setting.default)}\` | ${setting.description} |`;
  });
  return ["| Setting | Default | Meaning |", "| --- | --- | --- |", ...rows].join("\n");
}

/** `text` with the table between its markers replaced by the current one. */
export function withSettingsTable(text: string): string {
  const start = text.indexOf(START);
  const end = text.indexOf(END);
  if (start === -1 || end < start) throw new Error("The settings markers are missing");
  return `${text.slice(0, start + START.length)}\n\n${settingsTable()}\n\n${text.slice(end)}`;
}

if (import.meta.main) {
  const root = new URL("../", import.meta.url);
  for (const file of SETTINGS_TABLE_FILES) {
    const url = new URL(file, root);
    await Deno.writeTextFile(url, withSettingsTable(await Deno.readTextFile(url)));
  }
}
