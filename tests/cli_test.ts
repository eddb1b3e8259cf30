/**
 * The `herald` CLI as a child process against real hubs while a scripted producer publishes:
 * its plain output (stdout not a terminal), its exit codes, a hub restart in the middle of a
 * deploy, and the rendered screen in a real terminal (tmux).
 * @module
 */

import assert from "node:assert/strict";
import { runCli } from "./_cli.ts";
import { publishSeqs, publishTo, spawnHub, startTestHub, TEST_TOKEN, waitFor } from "./_harness.ts";
import { startProxy } from "./_tcp_proxy.ts";

type Publisher = { publish(body: unknown): Promise<Response> };

/** The scripted producer: a deploy of `appId` in parts, each with known durations. */
const deploy = {
  queued: (appId = "web") => ({
    type: "deploy.queued",
    appId,
    payload: { id: "d-1", imageTag: "v42" },
  }),
  step: (step: string, status: string, extra: Record<string, unknown> = {}, appId = "web") => ({
    type: "deploy.step",
    appId,
    payload: { step, status, ...extra },
  }),
  completed: (durationMs: number, appId = "web") => ({
    type: "deploy.completed",
    appId,
    payload: { id: "d-1", imageTag: "v42", durationMs },
  }),
  failed: (step: string, error: string, durationMs: number, appId = "web") => ({
    type: "deploy.failed",
    appId,
    payload: { id: "d-1", step, error, durationMs },
  }),
};

async function publish(hub: Publisher, events: unknown[]) {
  await publishSeqs(hub, events);
}

/** Waits until the CLI follows (its first snapshot came: it printed the waiting line). */
const WAITING = /^waiting {3}deploy web$/;

Deno.test("watch deploys: every step once in plain output, exit 0 on deploy.completed", async () => {
  await using hub = startTestHub();
  await using cli = runCli(["watch", "deploys", "--app", "web", "--url", hub.url]);
  await cli.line(WAITING);
  await publish(hub, [
    deploy.queued(),
    deploy.queued("api"),
    deploy.step("build", "running"),
    deploy.step("build", "running", { output: "compiling\nlinking" }),
    deploy.step("build", "done", { durationMs: 2100 }),
    deploy.step("test", "running", {}, "api"),
    deploy.step("test", "running"),
    deploy.step("test", "passed", { durationMs: 3000 }),
    deploy.completed(5100),
  ]);
  assert.equal(await cli.exit(), 0);
  assert.deepEqual(cli.stdout, [
    "waiting   deploy web",
    "queued    deploy web v42",
    "running   build",
    "          build | compiling",
    "          build | linking",
    "done      build 2.1s",
    "running   test",
    "done      test 3.0s",
    "completed deploy web in 5.1s",
  ]);
  assert.ok(!cli.stdout.join("").includes("\x1b"), "no escape codes off a terminal");
});

Deno.test("watch deploys: the failed step, its output and the error; exit 1 on deploy.failed", async () => {
  await using hub = startTestHub();
  await using cli = runCli(["watch", "deploys", "--app", "web", "--url", hub.url]);
  await cli.line(WAITING);
  await publish(hub, [
    deploy.queued(),
    deploy.step("build", "running"),
    deploy.step("build", "succeeded", { durationMs: 2100 }),
    deploy.step("test", "running", { output: "3 of 48 failed" }),
    deploy.step("test", "failed", { durationMs: 1500 }),
    deploy.failed("test", "tests failed", 3600),
  ]);
  assert.equal(await cli.exit(), 1);
  assert.deepEqual(cli.stdout.slice(-6), [
    "done      build 2.1s",
    "running   test",
    "          test | 3 of 48 failed",
    "failed    test 1.5s",
    "error     tests failed",
    "failed    deploy web at test in 3.6s",
  ]);
});

Deno.test("watch deploys: a deploy already running is picked up from the state", async () => {
  await using hub = startTestHub();
  await publish(hub, [
    deploy.queued(),
    deploy.step("build", "running"),
    deploy.step("build", "done", { durationMs: 1000 }),
    deploy.step("test", "running"),
  ]);
  await using cli = runCli(["watch", "deploys", "--app", "web", "--url", hub.url]);
  await cli.line(/^running {3}test$/);
  await publish(hub, [deploy.step("test", "done", { durationMs: 500 }), deploy.completed(2000)]);
  assert.equal(await cli.exit(), 0);
  assert.deepEqual(cli.stdout, [
    "queued    deploy web v42",
    "running   build",
    "done      build 1.0s",
    "running   test",
    "done      test 500ms",
    "completed deploy web in 2.0s",
  ]);
});

for (const history of ["kv", "memory"] as const) {
  Deno.test(`watch deploys through a hub restart mid-deploy (${history} history): no step twice, exit 0`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "herald-cli-" });
    try {
      const env = history === "kv"
        ? { HERALD_HISTORY: "kv", HERALD_KV_PATH: `${dir}/history.sqlite` }
        : {};
      await using first = await spawnHub(env);
      await using proxy = startProxy(first.port);
      await using cli = runCli(["watch", "deploys", "--app", "web", "--url", proxy.url]);
      await cli.line(WAITING);
      const via = (hub: { url: string }) => ({
        publish: (body: unknown) => publishTo(hub.url, body),
      });
      await publish(via(first), [
        deploy.queued(),
        deploy.step("build", "running", { output: "compiling" }),
        deploy.step("build", "done", { durationMs: 2000 }),
        deploy.step("test", "running"),
      ]);
      await cli.line(/^running {3}test$/);
      assert.equal((await first.stop()).code, 0);
      proxy.refuse();
      await waitFor(
        () => cli.stderr.some((line) => line.includes("connection lost (server shutting down)")),
        "the CLI to report the lost connection",
      );
      await using second = await spawnHub(env);
      await publish(via(second), [
        deploy.step("test", "running", { output: "48 passed" }),
        deploy.step("test", "done", { durationMs: 3000 }),
        deploy.step("push", "running"),
        deploy.step("push", "done", { durationMs: 700 }),
        deploy.completed(6000),
      ]);
      proxy.up(second.port);
      assert.equal(await cli.exit(), 0, cli.stderr.join("\n"));
      const before = [
        "waiting   deploy web",
        "queued    deploy web v42",
        "running   build",
        "          build | compiling",
        "done      build 2.0s",
        "running   test",
      ];
      if (history === "kv") {
        // Resumed: the missed events are replayed, output included.
        assert.deepEqual(cli.stdout, [
          ...before,
          "          test | 48 passed",
          "done      test 3.0s",
          "running   push",
          "done      push 700ms",
          "completed deploy web in 6.0s",
        ]);
      } else {
        // New epoch: the run is taken from the new hub's state (step output is not in state).
        assert.deepEqual(cli.stdout.slice(0, before.length + 3), [
          ...before,
          "done      test 3.0s",
          "running   push",
          "done      push 700ms",
        ]);
        assert.match(cli.stdout.at(-1)!, /^completed deploy web in \S+$/);
        assert.equal(cli.stdout.length, before.length + 4);
      }
      assert.ok(cli.stderr.includes("herald: reconnected"), cli.stderr.join("\n"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("publish (options and stdin), apps, state, watch events, tail logs, --help, usage errors", async () => {
  await using hub = startTestHub();
  const cwd = await Deno.makeTempDir({ prefix: "herald-cli-cwd-" });
  const run = async (args: string[], input?: string, env: Record<string, string> = {}) => {
    const cli = runCli([...args, "--url", hub.url], {
      cwd,
      env,
      ...(input !== undefined && { input }),
    });
    return { code: await cli.exit(), stdout: cli.stdout, stderr: cli.stderr };
  };
  try {
    const watcher = runCli([
      "watch",
      "events",
      "--topic",
      "deploy.*",
      "--count",
      "2",
      "--json",
      "--url",
      hub.url,
    ]);
    const logs = runCli(["tail", "logs", "--app", "web", "--count", "1", "--url", hub.url]);
    await waitFor(
      async () =>
        (await (await fetch(`${hub.url}/metrics`)).text()).match(/^herald_subscriptions 4$/m),
      "both watchers to subscribe",
    );

    const one = await run([
      "publish",
      "--type",
      "deploy.queued",
      "--app",
      "web",
      "--payload",
      '{"imageTag":"v7"}',
      "--token",
      TEST_TOKEN,
    ]);
    assert.equal(one.code, 0, one.stderr.join("\n"));
    assert.match(one.stdout[0]!, /^\S+ \S+-1$/);

    const lines = [
      JSON.stringify({
        type: "deploy.step",
        appId: "web",
        payload: { step: "build", status: "running" },
      }),
      "",
      JSON.stringify({ type: "log.line", appId: "web", payload: { line: "hello from web" } }),
    ].join("\n");
    const batch = await run(["publish", "--json"], lines, { HERALD_TOKEN: TEST_TOKEN });
    assert.equal(batch.code, 0, batch.stderr.join("\n"));
    assert.deepEqual(batch.stdout.map((line) => JSON.parse(line).seq.split("-")[1]), ["2", "3"]);

    assert.equal(await watcher.exit(), 0);
    assert.deepEqual(watcher.stdout.map((line) => JSON.parse(line).type), [
      "deploy.queued",
      "deploy.step",
    ]);
    assert.equal(await logs.exit(), 0);
    assert.deepEqual(logs.stdout, ["hello from web"]);

    const bad = await run(
      ["publish", "--token", TEST_TOKEN],
      '{"type":"deploy.rollback","payload":{}}\n',
    );
    assert.equal(bad.code, 1);
    assert.match(bad.stderr.join("\n"), /line 1: payload.imageTag is required/);
    const noToken = await run(["publish", "--type", "deploy.queued"]);
    assert.equal(noToken.code, 2);
    assert.match(noToken.stderr[0]!, /needs the publish token/);

    const apps = await run(["apps"]);
    assert.equal(apps.code, 0);
    assert.match(apps.stdout[0]!, /^APP\s+STATUS\s+HEALTH\s+DEPLOY\s+IMAGE\s+UPDATED$/);
    assert.match(apps.stdout[1]!, /^web\s+-\s+-\s+running \(build\)\s+-\s+\d{4}-/);
    const state = await run(["state", "--app", "web", "--json"]);
    assert.equal(JSON.parse(state.stdout[0]!).app.deployment.imageTag, "v7");

    for (
      const command of [
        [],
        ["watch"],
        ["watch", "deploys"],
        ["watch", "events"],
        ["tail", "logs"],
        ["publish"],
        ["state"],
        ["apps"],
      ]
    ) {
      const help = await run([...command, "--help"]);
      assert.equal(help.code, 0, command.join(" "));
      assert.match(help.stdout.join("\n"), /Usage: herald/, command.join(" "));
      assert.match(help.stdout.join("\n"), /--json/, command.join(" "));
    }
    const unknown = await run(["frobnicate"]);
    assert.equal(unknown.code, 2);
    const missingApp = await run(["watch", "deploys"]);
    assert.equal(missingApp.code, 2);
    assert.match(missingApp.stderr[0]!, /--app/);
    const all = [one, batch, apps, state].flatMap((result) => result.stdout).join("\n");
    assert.ok(!all.includes("\x1b"), "no escape codes off a terminal");
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("a hub that cannot be reached: state exits 3 with the reason", async () => {
  const cli = runCli(["state", "--url", "http://127.0.0.1:9", "--timeout", "1"]);
  // The client waits up to its request timeout (--timeout) for a connection, then gives up.
  assert.equal(await cli.exit(), 3);
  assert.match(cli.stderr.join("\n"), /no connection to the hub .* at http:\/\/127\.0\.0\.1:9/);
});

Deno.test("watch forge and watch teardown: the app named in the payload; exit 1 on failed, 0 on completed", async () => {
  await using hub = startTestHub();
  await using forge = runCli(["watch", "forge", "--app", "web", "--url", hub.url]);
  await using teardown = runCli(["watch", "teardown", "--app", "old", "--url", hub.url]);
  await forge.line(/^waiting {3}forge web$/);
  await teardown.line(/^waiting {3}teardown old$/);
  await publish(hub, [
    { type: "forge.queued", payload: { app: "other" } },
    { type: "forge.queued", payload: { app: "web" } },
    { type: "forge.step", payload: { app: "web", step: "generate", status: "running" } },
    { type: "forge.step", payload: { app: "other", step: "generate", status: "done" } },
    { type: "forge.failed", payload: { app: "web", step: "generate", error: "permission denied" } },
    { type: "teardown.queued", payload: { app: "old" } },
    {
      type: "teardown.step",
      payload: { app: "old", step: "drain", status: "done", durationMs: 400 },
    },
    { type: "teardown.completed", payload: { app: "old" } },
  ]);
  assert.equal(await forge.exit(), 1);
  assert.deepEqual(forge.stdout.slice(1, 3), ["queued    forge web", "running   generate"]);
  // No durationMs reported: the step's time comes from the events' timestamps.
  assert.match(forge.stdout[3]!, /^failed {4}generate \d+ms$/);
  assert.equal(forge.stdout[4], "error     permission denied");
  assert.equal(forge.stdout.length, 6);
  assert.match(forge.stdout.at(-1)!, /^failed {4}forge web at generate in \d+ms$/);
  assert.equal(await teardown.exit(), 0);
  assert.deepEqual(teardown.stdout.slice(1, 4), [
    "queued    teardown old",
    "running   drain",
    "done      drain 400ms",
  ]);
  assert.match(teardown.stdout.at(-1)!, /^completed teardown old in \d+ms$/);
});
