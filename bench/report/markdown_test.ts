import assert from "node:assert/strict";
import { BEGIN, END, renderMarkdown } from "./markdown.ts";
import type { Results } from "../scenarios.ts";
import type { Verdicts } from "./judge.ts";
import type { Machine } from "../_proc.ts";

const machine: Machine = {
  cpu: "cpu",
  cores: 2,
  memory: "1 GiB",
  kernel: "6",
  deno: "2",
  v8: "13",
  node: "20",
  peers: "ws 8, socket.io 4",
  load: "0",
};
const results = { sizes: { name: "smoke", rounds: 1 } } as unknown as Results;
const verdicts: Verdicts = { rows: [], problems: [] };
const run = { machine, command: "x", chartFile: "c.svg", startedAt: new Date(0), minutes: 1 };

Deno.test("the report replaces only what lies between the markers", () => {
  const previous = `# T\n\nintro\n\n${BEGIN}\nold table\n${END}\n\n## Method\n\nkept\n`;
  const text = renderMarkdown(previous, results, verdicts, run);
  assert.ok(text.startsWith("# T\n\nintro\n\n"));
  assert.ok(text.endsWith(`${END}\n\n## Method\n\nkept\n`));
  assert.ok(!text.includes("old table"));
  assert.ok(text.includes("![Deliveries per CPU-second"));
});

Deno.test("a report without markers gets them after its title", () => {
  const text = renderMarkdown("# T\n\nbody\n", results, verdicts, run);
  assert.ok(text.startsWith(`# T\n\n${BEGIN}`));
  assert.ok(text.endsWith(`${END}\n\nbody\n`));
});
