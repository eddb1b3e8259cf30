/**
 * The client in Node: bundled as it is for the browser, imported by a Node ES module that
 * subscribes with a snapshot, publishes and reads its event back from a real hub. Ignored, with
 * the reason printed, when `node` is not installed.
 * @module
 */

import assert from "node:assert/strict";
import { bundleForBrowser } from "./_chromium.ts";
import { startTestHub, TEST_TOKEN } from "./_harness.ts";

function nodeMajor(): number | null {
  try {
    const { success, stdout } = new Deno.Command("node", { args: ["--version"], stderr: "null" })
      .outputSync();
    return success ? Number(new TextDecoder().decode(stdout).match(/^v(\d+)/)?.[1]) : null;
  } catch {
    return null;
  }
}

const major = nodeMajor();
if (major === null) console.log("node_client_test ignored: node is not installed");

const SCRIPT = `
const [, , bundle, url, token] = process.argv;
const { connect } = await import(bundle);
const client = connect(url, { token });
const logs = client.subscribe("log.*", { snapshot: true });
await logs.ready;
const [accepted] = await client.publish({ type: "log.line", appId: "node", payload: { line: "from node" } });
const items = [];
for await (const item of logs) {
  items.push(item.kind === "event" ? { kind: "event", seq: item.event.seq, line: item.event.payload.line } : { kind: item.kind });
  if (item.kind === "event") break;
}
console.log(JSON.stringify({ items, seq: accepted.seq, state: client.connectionState }));
await client.close();
`;

Deno.test({
  name: "client (Node): subscribe with a snapshot, publish, get the event back",
  ignore: major === null,
}, async () => {
  await using hub = startTestHub();
  const dir = await Deno.makeTempDir({ prefix: "herald-node-" });
  try {
    const bundle = `${dir}/client.mjs`;
    await Deno.writeTextFile(
      bundle,
      await bundleForBrowser(new URL("../client/mod.ts", import.meta.url)),
    );
    await Deno.writeTextFile(`${dir}/main.mjs`, SCRIPT);
    // Node 22 has a global WebSocket; Node 20 and 21 need the flag.
    const flags = major! < 22 ? ["--experimental-websocket"] : [];
    const output = await new Deno.Command("node", {
      args: [...flags, `${dir}/main.mjs`, bundle, hub.url, TEST_TOKEN],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, stderr);
    const result = JSON.parse(new TextDecoder().decode(output.stdout));
    assert.deepEqual(result.items, [
      { kind: "snapshot" },
      { kind: "event", seq: result.seq, line: "from node" },
    ]);
    assert.equal(result.state, "open");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
