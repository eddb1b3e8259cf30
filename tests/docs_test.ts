/**
 * The docs stay true to the code: the generated settings tables are current, and every error
 * code, close code and catalogued type is documented in docs/protocol.md.
 */
import assert from "node:assert/strict";
import { CATALOG } from "../events/catalog.ts";
import { DISCONNECT, ERROR_CODES, LAG_REASONS } from "../events/codes.ts";
import { DORGU_TOPICS } from "../events/dialects.ts";
import { OVERFLOW_POLICIES } from "../hub/overflow.ts";
import { SETTINGS_TABLE_FILES, withSettingsTable } from "../server/settings_table.ts";

const root = new URL("../", import.meta.url);
const read = (path: string) => Deno.readTextFile(new URL(path, root));

/** Table text with the padding `deno fmt` adds removed, so only cell contents compare. */
function cells(text: string): string {
  return text.split("\n").map((line) =>
    line.startsWith("|")
      ? line.split("|").map((cell) => cell.trim().replace(/^-+$/, "-")).join("|")
      : line
  ).join("\n");
}

Deno.test("the settings tables are current (run `deno task docs` to refresh them)", async () => {
  for (const file of SETTINGS_TABLE_FILES) {
    const text = await read(file);
    assert.equal(cells(text), cells(withSettingsTable(text)), `${file} has a stale settings table`);
  }
});

Deno.test("docs/protocol.md documents every error code, close code and catalogued type", async () => {
  const protocol = await read("docs/protocol.md");
  for (const code of Object.values(ERROR_CODES)) assert.ok(protocol.includes(`\`${code}\``), code);
  for (const { code, reason } of Object.values(DISCONNECT)) {
    assert.ok(protocol.includes(`| ${code} | \`${reason}\``), `close code ${code}`);
  }
  for (const type of Object.keys(CATALOG)) assert.ok(protocol.includes(`\`${type}\``), type);
});

Deno.test("docs/protocol.md documents every lagged reason and overflow policy", async () => {
  const protocol = await read("docs/protocol.md");
  for (const reason of Object.values(LAG_REASONS)) {
    assert.ok(protocol.includes(`"${reason}"`), `lagged reason ${reason}`);
  }
  for (const policy of OVERFLOW_POLICIES) assert.ok(protocol.includes(`\`${policy}\``), policy);
});

Deno.test("docs/protocol.md documents every dorgu topic, its Herald types and every field's source", async () => {
  const protocol = cells(await read("docs/protocol.md"));
  for (const [name, topic] of Object.entries(DORGU_TOPICS)) {
    const row = protocol.split("\n").find((line) =>
      line.startsWith(`|\`${name}\`|`) && line.includes("`eventType`")
    );
    assert.ok(row !== undefined, `no row for dorgu topic ${name}`);
    for (const pattern of topic.patterns) assert.ok(row.includes(`\`${pattern.topic}\``), name);
    for (const field of Object.keys(topic.fields)) {
      assert.ok(row.includes(`\`${field}\``), `${name}.${field}`);
    }
  }
});
