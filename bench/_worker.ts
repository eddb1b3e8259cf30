/**
 * The runner's line protocol with its load processes (receivers and publishers): the child
 * gets its spec as a JSON argument, prints one JSON line when ready, then answers each JSON
 * command read from stdin with one JSON line. Closing stdin ends the child.
 * @module
 */

// deno-lint-ignore no-explicit-any
export type Message = Record<string, any>;

const PERMISSIONS = ["--allow-net", "--allow-read", "--allow-env", "--allow-sys"];

/** A load process seen from the runner. */
export class LoadProcess {
  readonly name: string;
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: AsyncIterator<string>;
  readonly #stderr: string[] = [];
  #exited = false;

  private constructor(name: string, child: Deno.ChildProcess) {
    this.name = name;
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#lines = child.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(lineSplitter())[
      Symbol.asyncIterator
    ]();
    void (async () => {
      for await (const line of child.stderr.pipeThrough(new TextDecoderStream())) {
        this.#stderr.push(line);
      }
    })();
    void child.status.then(() => (this.#exited = true));
  }

  /** Starts `script` with `spec` and waits for its ready line. */
  static async spawn(name: string, script: URL, spec: unknown): Promise<LoadProcess> {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", ...PERMISSIONS, script.pathname, JSON.stringify(spec)],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const process = new LoadProcess(name, child);
    await process.#read(120_000);
    return process;
  }

  get pid(): number {
    return this.#child.pid;
  }

  /** Sends a command and returns the reply. */
  async call(command: Message, timeoutMs = 120_000): Promise<Message> {
    await this.#writer.write(new TextEncoder().encode(JSON.stringify(command) + "\n"));
    return this.#read(timeoutMs);
  }

  /** Closes stdin and waits for the process to exit; kills it if it does not within 10 s. */
  async stop(): Promise<void> {
    await this.#writer.close().catch(() => {});
    const timer = setTimeout(() => this.#kill(), 10_000);
    await this.#child.status;
    clearTimeout(timer);
  }

  #kill(): void {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }

  async #read(timeoutMs: number): Promise<Message> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${this.name}: no answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      const next = await Promise.race([this.#lines.next(), timeout]);
      if (next.done) {
        const status = await this.#child.status;
        throw new Error(
          `${this.name} exited with ${status.code} (${this.#exited}):\n${this.#stderr.join("")}`,
        );
      }
      const message = JSON.parse(next.value) as Message;
      if (typeof message.error === "string") throw new Error(`${this.name}: ${message.error}`);
      return message;
    } finally {
      clearTimeout(timer);
    }
  }
}

function lineSplitter(): TransformStream<string, string> {
  let pending = "";
  return new TransformStream({
    transform(chunk, controller) {
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop()!;
      for (const line of lines) if (line !== "") controller.enqueue(line);
    },
    flush(controller) {
      if (pending !== "") controller.enqueue(pending);
    },
  });
}

/**
 * The child side: reads the spec from the first argument, runs `setup`, prints its result as
 * the ready line, then answers commands with `handle` until stdin closes.
 */
export async function serveCommands<S>(
  setup: (spec: S) => Promise<Message>,
  handle: (command: Message) => Message | Promise<Message>,
  teardown: () => Promise<void> = async () => {},
): Promise<void> {
  const write = (message: Message) => console.log(JSON.stringify(message));
  try {
    write(await setup(JSON.parse(Deno.args[0] ?? "{}") as S));
    const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).pipeThrough(
      lineSplitter(),
    );
    for await (const line of lines) write(await handle(JSON.parse(line)));
  } catch (error) {
    write({ error: error instanceof Error ? error.stack ?? error.message : String(error) });
  }
  await teardown();
  Deno.exit(0);
}
