/**
 * Helpers of the deploy suites: start Herald exactly as a platform would (any executable,
 * working directory and environment, as a real child process), run the smoke every way of
 * running it must pass, and stop it with a signal.
 * @module
 */

import assert from "node:assert/strict";
import { TestClient, waitFor } from "./_harness.ts";
import { RawWebSocket } from "./_raw_ws.ts";
import { SseReader } from "./_sse.ts";

/** The repository root, as a path ending in `/`. */
export const ROOT = new URL("../", import.meta.url).pathname;

/** How a platform starts the hub. */
export interface Launch {
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd: string;
  readonly env: Record<string, string>;
}

/** A hub started by {@linkcode launch}. */
export interface Launched {
  readonly child: Deno.ChildProcess;
  readonly port: number;
  readonly url: string;
  /** Every line it wrote to stdout or stderr so far. */
  readonly lines: string[];
  /** The JSON log records among {@linkcode lines}. */
  records(): Record<string, unknown>[];
  /** Sends `signal` and waits for the exit: its status and how long it took. */
  stop(signal: Deno.Signal): Promise<{ code: number; ms: number }>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts `launch` (which must log JSON) and waits for its "listening" record with the port. */
export async function launch(spec: Launch, timeoutMs = 20_000): Promise<Launched> {
  const child = new Deno.Command(spec.command, {
    args: [...spec.args],
    cwd: spec.cwd,
    env: spec.env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    let pending = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (pending + text).split("\n");
      pending = parts.pop()!;
      lines.push(...parts);
    }
    if (pending !== "") lines.push(pending);
  };
  const collected = Promise.all([collect(child.stdout), collect(child.stderr)]);
  let exited: Deno.CommandStatus | null = null;
  const status = child.status.then((result) => (exited = result));
  const records = () =>
    lines.flatMap((line) => {
      try {
        const record = JSON.parse(line);
        return typeof record === "object" && record !== null ? [record] : [];
      } catch {
        return [];
      }
    });
  const port = await waitFor(
    () => {
      if (exited !== null) {
        throw new Error(`exited with ${exited.code} before listening:\n${lines.join("\n")}`);
      }
      const listening = records().find((record) => /listening on/i.test(String(record.message)));
      return (listening?.properties as { port?: number } | undefined)?.port;
    },
    `the listening log line of ${spec.command} ${spec.args.join(" ")}`,
    timeoutMs,
  );
  let stopped: Promise<{ code: number; ms: number }> | null = null;
  const stop = (signal: Deno.Signal) => {
    stopped ??= (async () => {
      const started = Date.now();
      if (exited === null) child.kill(signal);
      const { code } = await status;
      const ms = Date.now() - started;
      await collected;
      return { code, ms };
    })();
    return stopped;
  };
  return {
    child,
    port,
    url: `http://127.0.0.1:${port}`,
    lines,
    records,
    stop,
    [Symbol.asyncDispose]: async () => {
      await stop("SIGKILL");
    },
  };
}

/** POSTs one event with `token`; returns the response status. */
export async function publishWith(url: string, token: string, event: unknown): Promise<number> {
  const response = await fetch(`${url}/events`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(event),
  });
  await response.body?.cancel();
  return response.status;
}

/**
 * The smoke every way of running Herald passes: `/health` answers, a WebSocket subscription
 * receives an event published over HTTP with `token`, and (when given) `dashboardRoute` serves
 * HTML. Returns the received event.
 */
export async function smoke(
  hub: Launched,
  token: string,
  dashboardRoute: string | null = null,
): Promise<Record<string, unknown>> {
  const health = await fetch(`${hub.url}/health`);
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: "ok" });
  await using client = await TestClient.connect(
    `ws://127.0.0.1:${hub.port}/ws?topic=deploy.*&appId=smoke`,
  );
  assert.equal(
    await publishWith(hub.url, token, { type: "deploy.queued", appId: "smoke", payload: {} }),
    202,
  );
  const [event] = await client.waitForEvents(1, 10_000);
  assert.equal(event?.type, "deploy.queued");
  if (dashboardRoute !== null) {
    const page = await fetch(`${hub.url}${dashboardRoute}`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /text\/html/);
    await page.body?.cancel();
  }
  return event!;
}

/**
 * Sends `signal` while a WebSocket client, an SSE reader and a WebSocket client that never
 * reads are connected; checks the WebSocket client got 1001, the process exited 0 within
 * `withinMs` and flushed its last log line.
 */
export async function drainsOn(hub: Launched, signal: Deno.Signal, withinMs: number) {
  const client = await TestClient.connect(`ws://127.0.0.1:${hub.port}/ws`);
  const sse = await SseReader.open(`${hub.url}/events/stream`);
  const { socket: stalled } = await RawWebSocket.handshake(hub.port);
  try {
    const { code, ms } = await hub.stop(signal);
    const close = await client.closedPromise;
    assert.equal(close.code, 1001);
    assert.equal(code, 0, hub.lines.join("\n"));
    assert.ok(ms < withinMs, `exited ${ms} ms after ${signal}, more than ${withinMs}`);
    const messages = hub.records().map((record) => record.message);
    assert.ok(messages.includes("Shut down cleanly"), "the last log line was flushed");
  } finally {
    stalled.close();
    await sse.close();
  }
}

/** Copies `files` (paths relative to {@linkcode ROOT}) into `dir`, creating directories. */
export async function copyFiles(files: readonly string[], dir: string): Promise<void> {
  for (const file of files) {
    const target = `${dir}/${file}`;
    await Deno.mkdir(target.slice(0, target.lastIndexOf("/")), { recursive: true });
    await Deno.copyFile(`${ROOT}${file}`, target);
  }
}

/** The local modules (paths relative to {@linkcode ROOT}) `main.ts` reaches, per `deno info`. */
export async function localModules(entry = "main.ts"): Promise<string[]> {
  const { stdout, success } = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: ROOT,
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.ok(success, "deno info failed");
  const graph = JSON.parse(new TextDecoder().decode(stdout)) as {
    modules: { specifier: string }[];
  };
  const prefix = new URL(ROOT, "file://").href;
  return graph.modules
    .map((module) => module.specifier)
    .filter((specifier) => specifier.startsWith(prefix))
    .map((specifier) => decodeURIComponent(specifier.slice(prefix.length)))
    .sort();
}

/**
 * This process's environment without Herald's settings (`PORT`, `HERALD_*`) and `DENORT_BIN`:
 * what a child needs to find Deno's cache and reach registries, and no setting by accident.
 */
export function baseEnv(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(Deno.env.toObject()).filter(([name]) =>
      name !== "PORT" && name !== "DENORT_BIN" && !name.startsWith("HERALD_")
    ),
  );
}

/** The `NAME=value` lines of an env file (as `deno deploy env load` reads it). */
export async function envFile(path: string): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const line of (await Deno.readTextFile(`${ROOT}${path}`)).split("\n")) {
    if (line.trim() === "" || line.startsWith("#")) continue;
    const equals = line.indexOf("=");
    env[line.slice(0, equals)] = line.slice(equals + 1);
  }
  return env;
}
