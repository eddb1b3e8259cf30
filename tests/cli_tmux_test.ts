/**
 * `herald watch deploys` in a real terminal: tmux runs it in a 100x30 pane while a scripted
 * producer publishes, and `capture-pane` shows what a person would see: the spinner on the
 * running step, then checks and a cross with durations, output lines, the error, no leftover
 * spinner, colours on a terminal and none with NO_COLOR. Ignored, with the reason printed, when
 * tmux is not installed.
 * @module
 */

import assert from "node:assert/strict";
import { publishSeqs, startTestHub, waitFor } from "./_harness.ts";

const CLI = new URL("../cli/main.ts", import.meta.url).pathname;

function tmuxMissing(): string | null {
  try {
    const { success } = new Deno.Command("tmux", { args: ["-V"], stdout: "null", stderr: "null" })
      .outputSync();
    return success ? null : "tmux -V failed";
  } catch {
    return "tmux is not installed (apt-get install tmux; .ci/run does this)";
  }
}

const missing = tmuxMissing();
if (missing !== null) console.log(`cli_tmux_test ignored: ${missing}`);

/** A tmux server of this test's own (its own socket), with one pane running `command`. */
async function terminal(name: string, command: string): Promise<
  { screen(colours?: boolean): Promise<string> } & AsyncDisposable
> {
  const socket = `herald-test-${Deno.pid}-${name}`;
  const tmux = async (...args: string[]) => {
    const output = await new Deno.Command("tmux", { args: ["-L", socket, ...args] }).output();
    if (!output.success) {
      throw new Error(`tmux ${args[0]}: ${new TextDecoder().decode(output.stderr)}`);
    }
    return new TextDecoder().decode(output.stdout);
  };
  await tmux("new-session", "-d", "-s", name, "-x", "100", "-y", "30", command);
  return {
    screen: (colours = false) => tmux("capture-pane", "-p", ...(colours ? ["-e"] : []), "-t", name),
    [Symbol.asyncDispose]: async () => {
      await tmux("kill-server").catch(() => {});
    },
  };
}

const SPINNER = /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/;

const events = {
  queued: { type: "deploy.queued", appId: "web", payload: { imageTag: "v42" } },
  step: (step: string, status: string, extra: Record<string, unknown> = {}) => ({
    type: "deploy.step",
    appId: "web",
    payload: { step, status, ...extra },
  }),
};

const watch = (url: string, env: string) =>
  `env -u NO_COLOR ${env} ${Deno.execPath()} run --allow-net --allow-env --allow-read ${CLI} watch deploys --app web --url ${url}; echo EXIT=$?; sleep 600`;

Deno.test({
  name:
    "watch deploys in tmux: spinner on the running step, then checks, cross, durations, colours",
  ignore: missing !== null,
}, async () => {
  await using hub = startTestHub();
  await using term = await terminal("fail", watch(hub.url, ""));
  await waitFor(
    async () => (await term.screen()).includes("waiting for a deploy of web"),
    "the waiting line",
    15_000,
  );
  await publishSeqs(hub, [events.queued, events.step("build", "running", { output: "compiling" })]);
  const running = await waitFor(async () => {
    const screen = await term.screen();
    return /^ {2}[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] build {2}\d/m.test(screen) && screen.includes("│ compiling")
      ? screen
      : null;
  }, "the spinner on build");
  console.log(`--- screen while build runs ---\n${running.trimEnd()}`);
  await publishSeqs(hub, [
    events.step("build", "done", { durationMs: 2100 }),
    events.step("test", "running", { output: "3 of 48 failed" }),
    events.step("test", "failed", { durationMs: 1500 }),
    {
      type: "deploy.failed",
      appId: "web",
      payload: { step: "test", error: "tests failed", durationMs: 3600 },
    },
  ]);
  const screen = await waitFor(async () => {
    const text = await term.screen();
    return text.includes("EXIT=") ? text : null;
  }, "the CLI to exit");
  console.log(`--- screen at the end ---\n${screen.trimEnd()}`);
  assert.deepEqual(screen.trimEnd().split("\n"), [
    "● deploy web v42",
    "  ✔ build  2.1s",
    "    │ compiling",
    "  ✖ test  1.5s",
    "    │ 3 of 48 failed",
    "    error: tests failed",
    "✖ deploy of web failed at test after 3.6s",
    "EXIT=1",
  ]);
  assert.doesNotMatch(screen, SPINNER, "the live block is cleared");
  const coloured = await term.screen(true);
  assert.ok(coloured.includes("\x1b[32m✔"), "a green check");
  assert.ok(coloured.includes("\x1b[31m✖"), "a red cross");
});

Deno.test({
  name: "watch deploys in tmux with NO_COLOR: the same screen without colours",
  ignore: missing !== null,
}, async () => {
  await using hub = startTestHub();
  await using term = await terminal("nocolor", watch(hub.url, "NO_COLOR=1"));
  await waitFor(
    async () => (await term.screen()).includes("waiting for a deploy of web"),
    "the waiting line",
    15_000,
  );
  await publishSeqs(hub, [
    events.queued,
    events.step("build", "done", { durationMs: 900 }),
    { type: "deploy.completed", appId: "web", payload: { durationMs: 1000 } },
  ]);
  const screen = await waitFor(async () => {
    const text = await term.screen(true);
    return text.includes("EXIT=") ? text : null;
  }, "the CLI to exit");
  assert.match(screen, /✔ build {2}900ms/);
  assert.match(screen, /✔ deploy of web completed in 1\.0s\s+EXIT=0/);
  const colours = [...Array(10).keys()].filter((n) => screen.includes(`\x1b[3${n}m`));
  assert.deepEqual(colours, [], "no colour codes");
});
