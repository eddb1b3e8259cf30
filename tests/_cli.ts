/**
 * The `herald` CLI and the demo as child processes, with their output collected line by line as
 * it comes, for the CLI and demo suites.
 * @module
 */

import { waitFor } from "./_harness.ts";

const CLI = new URL("../cli/main.ts", import.meta.url).pathname;
const DEMO = new URL("../cli/demo.ts", import.meta.url).pathname;

/** A running CLI process. */
export interface CliProcess {
  readonly stdout: string[];
  readonly stderr: string[];
  /** Waits for a stdout line matching `pattern`. */
  line(pattern: RegExp, what?: string): Promise<string>;
  /** Waits for the exit status (the output is complete then). */
  exit(): Promise<number>;
  kill(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

async function collect(stream: ReadableStream<Uint8Array>, into: string[]): Promise<void> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of stream) {
    pending += decoder.decode(chunk, { stream: true });
    const lines = pending.split("\n");
    pending = lines.pop()!;
    into.push(...lines);
  }
  if (pending !== "") into.push(pending);
}

/** Starts `script` (the CLI unless named) with `args`; stdin is `input` when given. */
export function runCli(
  args: string[],
  options: {
    env?: Record<string, string>;
    input?: string;
    script?: "cli" | "demo";
    /** Working directory (the CLI reads .herald/publish-token from it). */
    cwd?: string;
  } = {},
): CliProcess {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      options.script === "demo" ? DEMO : CLI,
      ...args,
    ],
    env: { NO_COLOR: "", ...options.env },
    ...(options.cwd !== undefined && { cwd: options.cwd }),
    stdin: options.input === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.input !== undefined) {
    const writer = child.stdin.getWriter();
    writer.write(new TextEncoder().encode(options.input)).then(() => writer.close());
  }
  const stdout: string[] = [];
  const stderr: string[] = [];
  const reading = Promise.all([collect(child.stdout, stdout), collect(child.stderr, stderr)]);
  const status = child.status;
  const exit = async () => {
    const { code } = await status;
    await reading;
    return code;
  };
  const kill = async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // Exited already.
    }
    await exit();
  };
  return {
    stdout,
    stderr,
    line: (pattern, what) =>
      waitFor(
        () => stdout.find((line) => pattern.test(line)),
        `${what ?? pattern} in the output:\n${stdout.join("\n")}\nstderr:\n${stderr.join("\n")}`,
        15_000,
      ),
    exit,
    kill,
    [Symbol.asyncDispose]: kill,
  };
}
