/**
 * `deno task compile`: builds the single `herald` binary for every supported target into
 * `dist/` (or `--out-dir DIR`; `--target T` builds one). The argument lists are exported so
 * that `tests/deploy_binary_test.ts` checks exactly what this task runs.
 *
 * `deno compile` fetches its `denort` runtime for each target from dl.deno.land; set
 * `DENORT_BIN` to a local denort binary (of the host target) to build without the download.
 * @module
 */

/** Targets `deno task compile` builds, with the suffix of their output file. */
export const TARGETS = {
  "x86_64-unknown-linux-gnu": "linux-x86_64",
  "aarch64-unknown-linux-gnu": "linux-arm64",
  "aarch64-apple-darwin": "macos-arm64",
} as const;

/** One of {@linkcode TARGETS}. */
export type Target = keyof typeof TARGETS;

/**
 * The entry point, relative to the repository root: the hub, and the CLI when the first
 * argument names a CLI command (`herald apps`; see `entryOf` in main.ts).
 */
export const ENTRYPOINT = "main.ts";

/**
 * Files and directories embedded besides the module graph (`--include`). Everything the hub
 * needs at run time must be reached through an import or listed here: the binary runs from
 * any directory and never reads its assets relative to the working directory. The dashboard
 * needs no entry: its build is a module (`web/dist/dashboard.ts`) that `server/dashboard.ts`
 * imports.
 */
export const INCLUDES: readonly string[] = [];

/** Path the dashboard is served on; the binary tests fetch it. */
export const DASHBOARD_ROUTE: string | null = "/";

/**
 * Permissions baked into the binary: the same as `deno task start`. `--unstable-kv` keeps the
 * Deno KV history available (`HERALD_HISTORY=kv`).
 */
export const PERMISSIONS = [
  "--allow-net",
  "--allow-env",
  "--allow-read",
  "--allow-write",
  "--allow-sys",
  "--unstable-kv",
] as const;

/** The `deno compile` arguments for one target, writing the binary to `output`. */
export function compileArgs(target: Target, output: string): string[] {
  return [
    "compile",
    ...PERMISSIONS,
    // Only the npm packages main.ts reaches (logtape, node-redis), not the test-only ones of
    // deno.json. Herald's lazy imports are string literals, so they are in the graph.
    "--exclude-unused-npm",
    ...INCLUDES.flatMap((path) => ["--include", path]),
    "--target",
    target,
    "--output",
    output,
    ENTRYPOINT,
  ];
}

/** The output file name for a target (`herald-linux-x86_64`). */
export function outputName(target: Target): string {
  return `herald-${TARGETS[target]}`;
}

function isTarget(value: string): value is Target {
  return value in TARGETS;
}

async function main(args: string[]): Promise<number> {
  let outDir = "dist";
  let targets = Object.keys(TARGETS) as Target[];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const value = args[i + 1];
    if (arg === "--out-dir" && value !== undefined) {
      outDir = value;
      i++;
    } else if (arg === "--target" && value !== undefined && isTarget(value)) {
      targets = [value];
      i++;
    } else {
      console.error(
        `usage: deno task compile [--out-dir DIR] [--target ${Object.keys(TARGETS).join("|")}]`,
      );
      return 2;
    }
  }
  const root = new URL("..", import.meta.url).pathname;
  for (const target of targets) {
    const dir = outDir.startsWith("/") ? outDir : `${Deno.cwd()}/${outDir}`;
    const output = `${dir.replace(/\/+$/, "")}/${outputName(target)}`;
    const { code } = await new Deno.Command(Deno.execPath(), {
      args: compileArgs(target, output),
      cwd: root,
    }).spawn().status;
    if (code !== 0) return code;
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
