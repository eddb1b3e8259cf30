/**
 * Herald run the way Deno Deploy runs it, as real processes on this machine: the files the
 * `deno deploy` CLI would upload (git's files, less `deploy.exclude`) copied to a fresh
 * directory, started with `deno run -A main.ts` and nothing else (Deploy grants every
 * permission and takes no runtime flags), with the settings of `deploy/deno-deploy.env`,
 * `DENO_DEPLOY=true`, Deno KV opened with no path, and stopped with SIGINT, after which Deploy
 * kills an instance 5 s later.
 */
import assert from "node:assert/strict";
import { redisMissing, startRedis, TEST_TOKEN, TestClient } from "./_harness.ts";
import {
  baseEnv,
  copyFiles,
  drainsOn,
  envFile,
  launch,
  type Launched,
  localModules,
  publishWith,
  ROOT,
  smoke,
} from "./_deploy.ts";
import { DENO_DEPLOY_KILL_AFTER_MS } from "../server/runtime.ts";

interface DeployConfig {
  org?: string;
  app?: string;
  include?: string[];
  exclude?: string[];
  runtime?: { entrypoint?: string; type?: string };
}

const denoJson = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
const deploy: DeployConfig = denoJson.deploy;

/** The settings file the guide loads with `deno deploy env load`. */
const deployEnv = () => envFile("deploy/deno-deploy.env");

/** What `deno deploy` uploads: files git tracks or would track, less `deploy.exclude`. */
async function uploadedFiles(): Promise<string[]> {
  const { stdout } = await new Deno.Command("git", {
    args: ["ls-files", "--cached", "--others", "--exclude-standard"],
    cwd: ROOT,
    stdout: "piped",
  }).output();
  const excluded = deploy.exclude ?? [];
  return new TextDecoder().decode(stdout).split("\n").filter((file) =>
    file !== "" && !file.startsWith("node_modules/") &&
    !excluded.some((path) => file === path || file.startsWith(path))
  );
}

/** A fresh upload directory; removes it and the Deno KV database `Deno.openKv()` made for it. */
async function upload(options: { honourUnstable: boolean }) {
  const dir = await Deno.makeTempDir({ prefix: "herald-deploy-" });
  const files = await uploadedFiles();
  await copyFiles(files.filter((file) => Deno.statSync(`${ROOT}${file}`).isFile), dir);
  if (!options.honourUnstable) {
    const config = JSON.parse(await Deno.readTextFile(`${dir}/deno.json`));
    delete config.unstable;
    await Deno.writeTextFile(`${dir}/deno.json`, JSON.stringify(config, null, 2));
  }
  // Deno keeps the default KV store of a project under its origin storage, named by the
  // SHA-256 of the config file's URL.
  const info = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json"],
    stdout: "piped",
  })
    .output();
  const { originStorage } = JSON.parse(new TextDecoder().decode(info.stdout));
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(new URL(`file://${dir}/deno.json`).href),
  );
  const kvDir = `${originStorage}/${
    Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("")
  }`;
  return {
    dir,
    kvDir,
    [Symbol.asyncDispose]: async () => {
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(kvDir, { recursive: true }).catch(() => {});
    },
  };
}

/** LogTape's JSON level of warnings. */
const WARNING = /^WARN/;

/** The properties of the hub's "listening" log record (bus, history, port). */
function listeningProperties(hub: Launched): Record<string, unknown> {
  const record = hub.records().find((record) => /listening on/.test(String(record.message)));
  return (record?.properties ?? {}) as Record<string, unknown>;
}

/** Starts an instance the way Deploy does: entrypoint only, every permission, no flags. */
function instance(dir: string, env: Record<string, string>): Promise<Launched> {
  return launch({
    command: Deno.execPath(),
    args: ["run", "-A", deploy.runtime?.entrypoint ?? "main.ts"],
    cwd: dir,
    env: {
      ...baseEnv(),
      ...env,
      DENO_DEPLOY: "true",
      PORT: "0",
      HERALD_HOSTNAME: "127.0.0.1",
      HERALD_PUBLISH_TOKEN: TEST_TOKEN,
    },
  });
}

Deno.test("deno.json's deploy key uses only documented keys and names the real entrypoint", async () => {
  const documented = ["org", "app", "include", "exclude", "runtime"];
  assert.deepEqual(Object.keys(deploy).filter((key) => !documented.includes(key)), []);
  assert.equal(deploy.runtime?.entrypoint, "main.ts");
  // Every path excluded from the upload is a plain directory or file prefix (no globs), and
  // none of them holds a module main.ts needs.
  for (const path of deploy.exclude ?? []) assert.match(path, /^[\w.-]+\/?$/, path);
  const uploaded = new Set(await uploadedFiles());
  for (const module of await localModules()) {
    assert.ok(uploaded.has(module), `${module} is uploaded`);
  }
});

Deno.test({
  name:
    "Deploy-style: two instances on Redis and the default KV, live across instances, resume after SIGINT within 5 s",
  ignore: redisMissing() !== null,
  async fn() {
    await using redis = await startRedis();
    await using up = await upload({ honourUnstable: true });
    const env: Record<string, string> = { ...(await deployEnv()), HERALD_REDIS_URL: redis.url };
    assert.equal(env.HERALD_HISTORY, "kv");
    assert.equal(env.HERALD_KV_PATH, undefined, "the guide opens Deno KV with no path");

    await using a = await instance(up.dir, env);
    await using b = await instance(up.dir, env);
    for (const hub of [a, b]) {
      const { bus, history } = listeningProperties(hub);
      assert.deepEqual({ bus, history }, { bus: "redis", history: "kv" });
      const warnings = hub.records().filter((record) => WARNING.test(String(record.level)));
      assert.deepEqual(warnings, [], "the documented settings raise no runtime warning");
    }
    await smoke(a, TEST_TOKEN);

    // Published on one instance, delivered live on the other.
    await using onB = await TestClient.connect(`ws://127.0.0.1:${b.port}/ws?topic=deploy.*`);
    assert.equal(
      await publishWith(a.url, TEST_TOKEN, {
        type: "deploy.step",
        appId: "web",
        payload: { step: "build", status: "running" },
      }),
      202,
    );
    const [live] = await onB.waitForEvents(1, 10_000);
    assert.equal(live?.appId, "web");

    // Eviction: SIGINT, and each instance drains within Deploy's 5 s.
    await drainsOn(a, "SIGINT", DENO_DEPLOY_KILL_AFTER_MS);
    assert.equal(
      await publishWith(b.url, TEST_TOKEN, { type: "deploy.completed", appId: "web", payload: {} }),
      202,
    );
    await onB.waitForEvents(2, 10_000);
    await onB.close();
    await drainsOn(b, "SIGINT", DENO_DEPLOY_KILL_AFTER_MS);

    // A new instance finds the history in the KV database and resumes the client.
    await using c = await instance(up.dir, env);
    await using resumed = await TestClient.connect(
      `ws://127.0.0.1:${c.port}/ws?topic=deploy.*&since=${live!.seq}`,
    );
    const [missed] = await resumed.waitForEvents(1, 10_000);
    assert.equal(missed?.type, "deploy.completed");
    assert.equal(resumed.frames[0]?.payload?.recovered, true);
    await resumed.close();
    await drainsOn(c, "SIGINT", DENO_DEPLOY_KILL_AFTER_MS);
  },
});

Deno.test("Deploy-style without Deno KV: HERALD_HISTORY=kv falls back to memory with one warning naming the setting", async () => {
  await using up = await upload({ honourUnstable: false });
  await using hub = await instance(up.dir, { ...(await deployEnv()), HERALD_BUS: "memory" });
  const warnings = hub.records().filter((record) => WARNING.test(String(record.level)));
  assert.equal(warnings.length, 1, hub.lines.join("\n"));
  assert.match(
    String(warnings[0]!.message),
    /HERALD_HISTORY=kv.*--unstable-kv.*HERALD_HISTORY=memory/,
  );
  assert.equal(listeningProperties(hub).history, "memory");
  await smoke(hub, TEST_TOKEN);
  await drainsOn(hub, "SIGINT", DENO_DEPLOY_KILL_AFTER_MS);
});
