/**
 * docs/operations.md stays true to the code: every metric a hub exposes is documented and every
 * metric an alert queries exists; every close code and every log message the code writes has
 * its row; the files deploy/README.md names exist.
 */
import assert from "node:assert/strict";
import { DISCONNECT } from "../events/codes.ts";
import { startTestHub } from "./_harness.ts";
import { ROOT } from "./_deploy.ts";

const operations = await Deno.readTextFile(`${ROOT}docs/operations.md`);

async function exposedMetrics(): Promise<string[]> {
  await using hub = startTestHub();
  const text = await (await fetch(`${hub.url}/metrics`)).text();
  return text.split("\n").filter((line) => line.startsWith("# TYPE ")).map((line) =>
    line.split(" ")[2]!
  );
}

Deno.test("operations.md documents every metric, and its alerts query only real ones", async () => {
  const exposed = await exposedMetrics();
  assert.ok(exposed.length > 10);
  for (const name of exposed) assert.ok(operations.includes(`\`${name}`), `${name} is documented`);
  const alerts = operations.slice(operations.indexOf("## Alerts"), operations.indexOf("## Close"));
  const queried = new Set(alerts.match(/herald_[a-z_]+/g) ?? []);
  assert.ok(queried.size >= 8, "the alerts section queries Herald's metrics");
  for (const name of queried) assert.ok(exposed.includes(name), `${name} exists`);
});

Deno.test("operations.md explains every close code", () => {
  for (const { code, reason } of Object.values(DISCONNECT)) {
    assert.match(operations, new RegExp(`\\| ${code} +\\| \`${reason}\``), `close code ${code}`);
  }
});

/** The string literals of every `log.<level>(...)` and `logger(...).<level>(...)` call. */
async function logMessages(): Promise<string[]> {
  const messages: string[] = [];
  for (
    const dir of [
      "",
      "agents/",
      "hub/",
      "hub/bus/",
      "hub/history/",
      "hub/presence/",
      "server/",
      "server/auth/",
      "server/transports/",
      "state/",
    ]
  ) {
    for await (const entry of Deno.readDir(`${ROOT}${dir}`)) {
      if (!entry.name.endsWith(".ts") || entry.name.endsWith("_test.ts")) continue;
      const source = await Deno.readTextFile(`${ROOT}${dir}${entry.name}`);
      for (
        const call of source.matchAll(
          /\b(?:log|logger\([^)]*\))\.(?:debug|info|warn|warning|error)\(/g,
        )
      ) {
        let depth = 1;
        let end = call.index + call[0].length;
        for (; depth > 0 && end < source.length; end++) {
          const char = source[end];
          if (char === '"') end = source.indexOf('"', end + 1);
          else if (char === "(") depth++;
          else if (char === ")") depth--;
        }
        const text = source.slice(call.index + call[0].length, end);
        messages.push(...[...text.matchAll(/"([^"]+)"/g)].map((match) => match[1]!));
      }
    }
  }
  return messages;
}

Deno.test("operations.md explains every log message the hub writes", async () => {
  const messages = await logMessages();
  assert.ok(messages.includes("Shut down cleanly") && messages.includes("Redis bus reconnected"));
  const undocumented = messages.filter((message) => !operations.includes(`\`${message}\``));
  assert.deepEqual(undocumented, [], "every log line has its row in operations.md");
});

Deno.test("deploy/README.md links only files that exist", async () => {
  const readme = await Deno.readTextFile(`${ROOT}deploy/README.md`);
  const links = [...readme.matchAll(/\]\(([^)#]+)\)/g)].map((match) => match[1]!);
  assert.ok(links.length >= 5);
  for (const link of links) await Deno.stat(new URL(link, `file://${ROOT}deploy/`));
});
