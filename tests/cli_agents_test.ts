/** `herald agents` and `herald agents command` as subprocesses against a real hub and agent. */

import assert from "node:assert/strict";
import { openTestHub, TEST_TOKEN } from "./_harness.ts";
import { runCli } from "./_cli.ts";
import { AGENT_ENV, connectAgent, obey, register } from "./_agents.ts";

Deno.test("herald agents lists agents; agents command waits for the outcome; errors exit 1 or 2", async () => {
  await using hub = await openTestHub(AGENT_ENV);
  await using agent = await connectAgent(hub.url, "cli-edge-1");
  obey(agent);
  await register(hub.url, { agentId: "cli-idle", platform: "vm" });

  await using list = runCli(["agents", "--url", hub.url]);
  assert.equal(await list.exit(), 0);
  assert.match(list.stdout.join("\n"), /^AGENT\s+STATUS/m);
  assert.match(list.stdout.join("\n"), /cli-edge-1\s+online\s+docker\s+test/);
  assert.match(list.stdout.join("\n"), /cli-idle\s+offline\s+vm/);

  await using command = runCli([
    "agents",
    "command",
    "cli-edge-1",
    "start_session",
    "--payload",
    '{"sessionId":"s1"}',
    "--url",
    hub.url,
    "--token",
    TEST_TOKEN,
  ]);
  assert.equal(await command.exit(), 0, command.stderr.join("\n"));
  assert.match(command.stdout.join("\n"), /^\S+ completed \{"echoed":\{"sessionId":"s1"\}\}$/m);

  await using offline = runCli(
    ["agents", "command", "cli-idle", "start_session", "--url", hub.url, "--token", TEST_TOKEN],
  );
  assert.equal(await offline.exit(), 1);
  assert.match(offline.stderr.join("\n"), /not connected \(409\)/);

  const empty = await Deno.makeTempDir();
  await using noToken = runCli(["agents", "command", "cli-edge-1", "x", "--url", hub.url], {
    cwd: empty,
  });
  assert.equal(await noToken.exit(), 2);
  await Deno.remove(empty);
  await using missing = runCli(["agents", "command", "cli-edge-1", "--url", hub.url]);
  assert.equal(await missing.exit(), 2);
});
