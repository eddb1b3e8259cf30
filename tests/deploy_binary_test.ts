/**
 * The single binary (`deno task compile`). `deno compile` downloads its `denort` runtime from
 * dl.deno.land, which this machine cannot reach, so what can be checked here is checked:
 * the task's arguments get `deno compile` as far as that download for every target, every
 * asset is reached through an import or `--include`, and the entry point serves from an empty
 * directory with file access confined to it, as the binary does. With `DENORT_BIN` set (a
 * denort binary of this machine's target), the real binary is built and smoke-tested too.
 */
import assert from "node:assert/strict";
import {
  compileArgs,
  DASHBOARD_ROUTE,
  ENTRYPOINT,
  INCLUDES,
  outputName,
  PERMISSIONS,
  type Target,
  TARGETS,
} from "../deploy/compile.ts";
import { baseEnv, drainsOn, type Launch, launch, localModules, ROOT, smoke } from "./_deploy.ts";

const decoder = new TextDecoder();

/** Runs `deno task compile` for one target into `outDir`; returns its exit code and output. */
async function compileTask(target: Target, outDir: string, env: Record<string, string>) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["task", "compile", "--out-dir", outDir, "--target", target],
    cwd: ROOT,
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code, output: decoder.decode(stdout) + decoder.decode(stderr) };
}

/** How the binary is started: from `dir`, with only the settings it is given. */
function fromEmptyDirectory(command: string, args: string[], dir: string): Launch {
  return {
    command,
    args,
    cwd: dir,
    env: { ...baseEnv(), PORT: "0", HERALD_HOSTNAME: "127.0.0.1", HERALD_LOG_FORMAT: "json" },
  };
}

/**
 * Smoke of a hub started from an empty directory: it stores its token there, then serves; the
 * same entry, given a CLI command, publishes to it (the token read from that directory) and
 * lists its apps.
 */
async function smokeFromEmptyDirectory(spec: Launch): Promise<void> {
  await using hub = await launch(spec);
  const token = (await Deno.readTextFile(`${spec.cwd}/.herald/publish-token`)).trim();
  await smoke(hub, token, DASHBOARD_ROUTE);
  const cli = (...args: string[]) => runEntry(spec, [...args, "--url", hub.url, "--json"]);
  const published = await cli(
    "publish",
    "--type",
    "app.status",
    "--app",
    "binary-cli",
    "--payload",
    '{"status":"running"}',
  );
  assert.equal(published.code, 0, published.output);
  const apps = await cli("apps");
  assert.equal(apps.code, 0, apps.output);
  assert.ok(
    apps.output.split("\n").some((line) => line.includes('"appId":"binary-cli"')),
    `the app published through the CLI is listed:\n${apps.output}`,
  );
  await drainsOn(hub, "SIGTERM", 10_000);
}

/** Runs the entry of `spec` with `args` (a CLI command) to its exit. */
async function runEntry(spec: Launch, args: string[]): Promise<{ code: number; output: string }> {
  const { code, stdout, stderr } = await new Deno.Command(spec.command, {
    args: [...spec.args, ...args],
    cwd: spec.cwd,
    env: spec.env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code, output: decoder.decode(stdout) + decoder.decode(stderr) };
}

Deno.test("deno task compile gets deno compile as far as fetching denort for every target", async () => {
  const outDir = await Deno.makeTempDir({ prefix: "herald-compile-" });
  try {
    for (const path of INCLUDES) await Deno.stat(`${ROOT}${path}`); // deno compile checks them later
    const env = baseEnv(); // without DENORT_BIN: the download is what is checked
    for (const target of Object.keys(TARGETS) as Target[]) {
      const { code, output } = await compileTask(target, outDir, env);
      const download = `https://dl.deno.land/release/v${Deno.version.deno}/denort-${target}.zip`;
      if (code === 0) {
        // The download server was reachable: the binary exists.
        assert.ok((await Deno.stat(`${outDir}/${outputName(target)}`)).size > 0);
        continue;
      }
      const downloadAt = output.indexOf(download);
      assert.ok(downloadAt !== -1, `${target}: never got to fetching denort:\n${output}`);
      assert.ok(
        !/error/i.test(output.slice(0, downloadAt)),
        `${target}: failed before the download:\n${output}`,
      );
      assert.match(output.slice(downloadAt), /dl\.deno\.land/);
    }
  } finally {
    await Deno.remove(outDir, { recursive: true });
  }
});

Deno.test("the compile task bakes in the permissions of deno task start, --unstable-kv, and only used npm packages", async () => {
  const start = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks.start as string;
  const startFlags = start.split(" ").filter((word) => word.startsWith("--"));
  assert.deepEqual(PERMISSIONS.filter((flag) => flag.startsWith("--allow-")), startFlags);
  const args = compileArgs("x86_64-unknown-linux-gnu", "out");
  assert.ok(args.includes("--unstable-kv"));
  assert.ok(args.includes("--exclude-unused-npm"), "test-only npm packages stay out");
  assert.equal(compileArgs("aarch64-apple-darwin", "out").at(-1), ENTRYPOINT);
});

/** Reads of files relative to a module or the working directory (assets must be imported). */
const FILE_ACCESS =
  /import\.meta\.(url|dirname|filename)|Deno\.(cwd|readFile|readTextFile|open|readDir|stat)\b|node:fs/g;

/** Modules of the binary that touch files, and why that is not an asset. */
const DATA_FILES: Record<string, string> = {
  "server/token.ts": "reads and writes the publish token in HERALD_DATA_DIR (data, not an asset)",
  "server/auth/tokens_file.ts": "reads HERALD_TOKENS_FILE, the operator's configuration",
  "server/auth/jwt.ts": "reads HERALD_JWT_PUBLIC_KEY_FILE, the operator's configuration",
  "cli/main.ts": "the CLI's publish reads .herald/publish-token of the directory it runs in (data)",
};

Deno.test("every module of the binary is reached by import, and none reads assets from disk", async () => {
  const modules = await localModules(ENTRYPOINT);
  assert.ok(modules.includes("hub/bus/redis.ts"), "the lazily imported Redis bus is in the graph");
  assert.ok(modules.includes("cli/main.ts"), "the lazily imported CLI is in the graph");
  const reading: string[] = [];
  for (const module of modules) {
    const source = await Deno.readTextFile(`${ROOT}${module}`);
    const code = source.replace(/^\s*(\*|\/\/).*$/gm, ""); // comments mention these names
    if (FILE_ACCESS.test(code) && !(module in DATA_FILES)) reading.push(module);
    FILE_ACCESS.lastIndex = 0;
  }
  assert.deepEqual(reading, [], "these read files: embed them with --include and import them");
});

Deno.test("from an empty directory, with file access confined to it, the entry point serves and stops on SIGTERM", async () => {
  const dir = await Deno.makeTempDir({ prefix: "herald-empty-" });
  try {
    const confined = PERMISSIONS.map((flag) =>
      flag === "--allow-read" || flag === "--allow-write" ? `${flag}=${dir}` : flag
    );
    await smokeFromEmptyDirectory(fromEmptyDirectory(Deno.execPath(), [
      "run",
      ...confined,
      "--config",
      `${ROOT}deno.json`, // the binary carries its import map
      `${ROOT}${ENTRYPOINT}`,
    ], dir));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const denort = Deno.env.get("DENORT_BIN");
const host = Deno.build.target as Target;

Deno.test({
  name: "DENORT_BIN: the real binary builds, runs from an empty directory and stops on SIGTERM",
  ignore: denort === undefined || !(host in TARGETS),
  async fn() {
    const outDir = await Deno.makeTempDir({ prefix: "herald-binary-" });
    const dir = await Deno.makeTempDir({ prefix: "herald-empty-" });
    try {
      const { code, output } = await compileTask(host, outDir, {
        ...baseEnv(),
        DENORT_BIN: denort!,
      });
      assert.equal(code, 0, output);
      const binary = `${outDir}/${outputName(host)}`;
      const { size } = await Deno.stat(binary);
      console.log(`${outputName(host)}: ${(size / 2 ** 20).toFixed(1)} MiB`);
      await smokeFromEmptyDirectory(fromEmptyDirectory(binary, [], dir));
    } finally {
      await Deno.remove(outDir, { recursive: true });
      await Deno.remove(dir, { recursive: true });
    }
  },
});
