/**
 * `herald`: the terminal client of a Herald hub. Watches deploy, forge and teardown runs as they
 * happen (exiting 0 when one completes and 1 when it fails, so scripts can wait on a deploy),
 * prints events and log lines, publishes, and shows state. Built on the client in `client/`, so
 * it reconnects and resumes through hub restarts by itself.
 *
 * Run with `deno task cli -- <command>`, or as `herald <command>` with the single binary that
 * `deno task compile` builds (main.ts hands CLI commands to {@linkcode main}).
 * @module
 */

import { parseArgs } from "node:util";
import {
  connect,
  type HeraldClient,
  type HubEvent,
  type Subscription,
  type SubscriptionItem,
} from "../client/mod.ts";
import type { JsonObject } from "../events/json.ts";
import { RUN_SLOT, type RunKind, RunView } from "./run_view.ts";
import { LiveRegion, paint, type Style, styleFor } from "./term.ts";

/** Exit statuses. */
export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3, interrupted: 130 } as const;

const GLOBAL_HELP = `Options of every command:
  --url URL      the hub (default: $HERALD_URL, else http://localhost:8800)
  --token TOKEN  the publish token (default: $HERALD_TOKEN; publish also reads
                 .herald/publish-token in the current directory)
  --json         one JSON object per line, for machines
  --timeout S    publish, state and apps give up after S seconds without the hub
                 (default 10)
  -h, --help     this help
Colours only on a terminal, never with NO_COLOR set.`;

const HELP: Record<string, string> = {
  herald: `herald: watch and drive a Herald hub from the terminal

Usage: herald <command> [options]

Commands:
  watch deploys --app APP    follow a deploy until it completes (exit 0) or fails (exit 1)
  watch forge --app APP      the same for a forge run
  watch teardown --app APP   the same for a teardown run
  watch events               print events as they arrive
  tail logs --app APP        print an app's log lines as they arrive
  publish                    publish an event (or one per stdin line)
  state                      print the hub's current state
  apps                       list apps with their status and last deploy
  agents                     list agents: online or not, node, last heartbeat
  agents command ID ACTION   send a command to an agent and wait for its outcome
  serve [flags]              run the hub itself (the binary, or main.ts; also 'herald' alone)

Run 'herald <command> --help' for a command's options.

${GLOBAL_HELP}`,
  watch: `Usage: herald watch <deploys|forge|teardown|events> [options]

  deploys --app APP   follow the app's next (or current) deploy
  forge --app APP     follow the app's next (or current) forge run
  teardown --app APP  follow the app's next (or current) teardown run
  events              print events as they arrive

${GLOBAL_HELP}`,
  "watch run": `Usage: herald watch <deploys|forge|teardown> --app APP [options]

Shows the app's run as it happens: a spinner on the running step, a check or a cross with the
duration on finished ones, each step's output, the error when it fails. A run already going when
the watch starts is picked up where it is; otherwise the watch waits for the next one.
Exits 0 when the run completes, 1 when it fails, 3 when the hub refuses the connection for good.
Survives hub restarts: it reconnects and resumes, and prints no step twice.

  --app APP   the app (required)

${GLOBAL_HELP}`,
  "watch events": `Usage: herald watch events [--topic PATTERN] [--app APP] [-n NAMESPACE] [options]

Prints every matching event as it arrives (one line each), until interrupted.

  --topic PATTERN      '*' (default), a prefix such as 'persona.*', or an exact type
  --app APP            only events of this app
  -n, --namespace NS   only events of this namespace
  --count N            exit after N events

${GLOBAL_HELP}`,
  "tail logs": `Usage: herald tail logs [--app APP] [-n NAMESPACE] [options]

Prints log.line events as they arrive: the line itself (in red when its stream is stderr).

  --app APP            only this app's log lines
  -n, --namespace NS   only this namespace's
  --count N            exit after N lines

${GLOBAL_HELP}`,
  publish: `Usage: herald publish --type TYPE [--app APP] [-n NAMESPACE] [--payload JSON] [--id ID]
       herald publish < events.jsonl

Publishes one event from the options, or, without --type, one event per line of standard input
(each line a JSON event object: type, appId, namespace, payload, id, timestamp). Prints the id
and seq the hub gave each. Needs the publish token.

${GLOBAL_HELP}`,
  state: `Usage: herald state [--app APP] [options]

Prints the hub's current state (of one app with --app) as JSON.

${GLOBAL_HELP}`,
  agents: `Usage: herald agents [options]
       herald agents command AGENT_ID ACTION [--payload JSON] [--wait S]

Without a subcommand: lists the registered agents (online or offline, platform, region, the
node holding the connection, last heartbeat).

command: sends ACTION (start_session, stop_session...) with --payload to the agent, wherever it
is connected, and waits up to --wait seconds (default 30; 0: print the command id at once) for
its outcome. Exit 0 when it completed, 1 when it failed, timed out, or the agent was lost,
offline (409) or unknown (404). Needs the publish token (the control credential).

${GLOBAL_HELP}`,
  apps: `Usage: herald apps [options]

Lists the apps the hub knows: status, health, last deploy and its step, image.

${GLOBAL_HELP}`,
};

/** Where the CLI writes and what it knows of its terminal; tests may pass their own. */
export interface Io {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly stdoutIsTerminal: boolean;
  readonly columns: number;
  readonly env: (name: string) => string | undefined;
  readonly stdin: ReadableStream<Uint8Array>;
  readonly stdinIsTerminal: boolean;
  readonly readFile: (path: string) => Promise<string>;
}

function writer(file: { writeSync(bytes: Uint8Array): number }): (text: string) => void {
  const encoder = new TextEncoder();
  return (text) => {
    const bytes = encoder.encode(text);
    for (let written = 0; written < bytes.length;) {
      written += file.writeSync(bytes.subarray(written));
    }
  };
}

function denoIo(): Io {
  let columns = 80;
  try {
    columns = Deno.consoleSize().columns;
  } catch {
    // Not a terminal.
  }
  return {
    stdout: writer(Deno.stdout),
    stderr: writer(Deno.stderr),
    stdoutIsTerminal: Deno.stdout.isTerminal(),
    columns,
    env: (name) => Deno.env.get(name),
    stdin: Deno.stdin.readable,
    stdinIsTerminal: Deno.stdin.isTerminal(),
    readFile: (path) => Deno.readTextFile(path),
  };
}

class UsageError extends Error {}

interface Context {
  readonly io: Io;
  readonly style: Style;
  readonly url: string;
  readonly token: string | undefined;
  readonly json: boolean;
  readonly values: Record<string, string | boolean | undefined>;
  readonly positionals: string[];
}

const OPTIONS = {
  url: { type: "string" },
  token: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  app: { type: "string" },
  namespace: { type: "string", short: "n" },
  topic: { type: "string" },
  count: { type: "string" },
  type: { type: "string" },
  payload: { type: "string" },
  id: { type: "string" },
  timeout: { type: "string" },
  wait: { type: "string" },
} as const;

/** Runs the CLI with `args`; resolves with the exit status. */
export async function main(args: string[], io: Io = denoIo()): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    io.stderr(`herald: ${(error as Error).message}\nRun 'herald --help' for usage.\n`);
    return EXIT.usage;
  }
  const { values, positionals } = parsed;
  const [command, sub] = positionals;
  const helpKey = command === undefined
    ? "herald"
    : command === "watch" && sub !== undefined
    ? (sub === "events" ? "watch events" : "watch run")
    : command === "tail"
    ? "tail logs"
    : command;
  if (values.help || command === undefined || command === "help") {
    const text = HELP[command === "help" ? (sub ?? "herald") : helpKey] ?? HELP.herald!;
    io.stdout(`${text}\n`);
    return command === undefined && !values.help ? EXIT.usage : EXIT.ok;
  }
  const context: Context = {
    io,
    style: styleFor(io.stdoutIsTerminal, { noColor: io.env("NO_COLOR") }, io.columns),
    url: values.url ?? io.env("HERALD_URL") ?? "http://localhost:8800",
    token: values.token ?? io.env("HERALD_TOKEN"),
    json: values.json === true,
    values,
    positionals,
  };
  try {
    switch (command) {
      case "watch": {
        if (sub === "events") return await watchEvents(context, "*");
        const kind =
          ({ deploys: "deploy", deploy: "deploy", forge: "forge", teardown: "teardown" } as const)[
            sub as "deploys"
          ];
        if (kind === undefined) {
          throw new UsageError(`watch what? (deploys, forge, teardown, events)`);
        }
        return await watchRun(context, kind);
      }
      case "tail":
        if (sub !== "logs") throw new UsageError("tail what? (logs)");
        return await watchEvents(context, "log.line");
      case "publish":
        return await publish(context);
      case "state":
        return await oneShot(
          context,
          (client) => client.state(values.app === undefined ? {} : { appId: values.app }),
          printState,
        );
      case "apps":
        return await oneShot(context, (client) => client.apps(), printApps);
      case "agents":
        if (sub === "command") return await commandAgent(context);
        if (sub !== undefined) throw new UsageError(`agents what? (command)`);
        return await oneShot(context, (client) => client.request("agents"), printAgents);
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(
        `herald: ${error.message}\nRun 'herald ${
          helpKey === "herald" ? "" : `${helpKey} `
        }--help' for usage.\n`,
      );
      return EXIT.usage;
    }
    io.stderr(`herald: ${(error as Error).message}\n`);
    return EXIT.failed;
  }
}

function client(context: Context, token = context.token): HeraldClient {
  const seconds = context.values.timeout === undefined ? 10 : Number(context.values.timeout);
  if (!(seconds > 0)) throw new UsageError("--timeout must be a positive number of seconds");
  return connect(context.url, {
    ...(token !== undefined && { token }),
    requestTimeoutMs: seconds * 1000,
  });
}

/**
 * Reports connection changes: on a terminal as a notice in the live block, otherwise as lines on
 * stderr (stdout stays the data). Returns the current notice.
 */
function watchConnection(
  context: Context,
  hub: HeraldClient,
  onClosed: () => void,
): { notice: () => string | undefined; stop: () => void } {
  let notice: string | undefined;
  let wasOpen = false;
  const stop = hub.onState((state, lastClose) => {
    const why = lastClose === null ? "" : ` (${lastClose.reason})`;
    if (state === "reconnecting") {
      notice = `connection lost${why}; reconnecting…`;
      if (wasOpen && !context.style.tty) context.io.stderr(`herald: ${notice}\n`);
    } else if (state === "open") {
      if (wasOpen && !context.style.tty) context.io.stderr("herald: reconnected\n");
      wasOpen = true;
      notice = undefined;
    } else if (state === "closed") {
      notice = `connection closed${why}`;
      context.io.stderr(`herald: ${notice}\n`);
      onClosed();
    }
  });
  return { notice: () => notice, stop };
}

/**
 * Ends `subscription` (so its loop ends) when the client closes for good or SIGINT arrives, and
 * says which: `exit()` is null while neither happened.
 */
function watchSubscription(context: Context, hub: HeraldClient, subscription: Subscription) {
  let exit: number | null = null;
  const connection = watchConnection(context, hub, () => {
    exit = EXIT.unreachable;
    subscription.unsubscribe();
  });
  const removeInterrupt = onInterrupt(() => {
    exit = EXIT.interrupted;
    subscription.unsubscribe();
  });
  return {
    notice: connection.notice,
    exit: () => exit,
    stop: () => {
      removeInterrupt();
      connection.stop();
    },
  };
}

/** Ends `run` when SIGINT arrives; the returned function removes the listener. */
function onInterrupt(run: () => void): () => void {
  try {
    Deno.addSignalListener("SIGINT", run);
    return () => Deno.removeSignalListener("SIGINT", run);
  } catch {
    return () => {};
  }
}

async function watchRun(context: Context, kind: RunKind): Promise<number> {
  const appId = context.values.app;
  if (typeof appId !== "string") throw new UsageError(`watch needs --app`);
  const { io, style } = context;
  const hub = client(context);
  const view = new RunView(kind, appId, style);
  const region = new LiveRegion(style, io.stdout);
  const subscription = hub.subscribe(`${kind}.*`, {
    ...(kind === "deploy" && { appId }),
    snapshot: true,
  });
  const watch = watchSubscription(context, hub, subscription);
  const notice = watch.notice;
  if (style.tty) io.stdout("\x1b[?25l");
  const redraw = () => region.render([], view.live(Date.now(), notice()));
  const spinner = style.tty ? setInterval(redraw, 80) : undefined;
  let snapshots = 0;
  try {
    for await (const item of subscription) {
      let lines: string[] = [];
      if (item.kind === "event") {
        if (kind !== "deploy" && RunView.appOf(item.event) !== appId) continue;
        if (context.json) io.stdout(`${JSON.stringify(item.event)}\n`);
        lines = view.apply(item.event);
      } else if (item.kind === "snapshot") {
        const run = runOf(item.state, appId, kind);
        lines = view.adopt(run, snapshots++ > 0 || item.reason !== null);
        // Plain output says when the watch is following (scripts may wait for this line).
        if (snapshots === 1 && view.phase === "waiting" && !style.tty) {
          lines.unshift(`waiting   ${kind} ${appId}`);
        }
      }
      if (!context.json) region.render(lines, view.live(Date.now(), notice()));
      if (view.finished) break;
    }
  } finally {
    if (spinner !== undefined) clearInterval(spinner);
    region.clear();
    if (style.tty) io.stdout("\x1b[?25h");
    watch.stop();
    await hub.close();
  }
  return watch.exit() ?? (view.phase === "completed" ? EXIT.ok : EXIT.failed);
}

/** The app's run of `kind` in a `state` answer (whole state or one app's). */
function runOf(state: JsonObject, appId: string, kind: RunKind): JsonObject | null {
  const app = (state.app as JsonObject | null | undefined) ??
    (state.apps as JsonObject[] | undefined)?.find((candidate) => candidate.appId === appId);
  if (app === undefined || app === null || app.appId !== appId) return null;
  return (app[RUN_SLOT[kind]] as JsonObject | null) ?? null;
}

const CATEGORY_COLOR: Record<string, "cyan" | "magenta" | "blue" | "yellow" | "green"> = {
  deploy: "cyan",
  forge: "magenta",
  teardown: "magenta",
  persona: "blue",
  cluster: "blue",
  health: "green",
  app: "green",
  log: "yellow",
};

function eventLine(style: Style, event: HubEvent): string {
  const time = event.timestamp.slice(11, 19);
  const where = `${event.appId ?? "-"}${
    event.namespace === undefined ? "" : `/${event.namespace}`
  }`;
  const category = event.type.slice(0, event.type.indexOf("."));
  const type = paint(style, CATEGORY_COLOR[category] ?? "bold", event.type);
  return `${paint(style, "dim", time)} ${type} ${where} ${JSON.stringify(event.payload)}`;
}

function logLine(style: Style, event: HubEvent): string {
  const line = String(event.payload.line ?? "");
  if (!style.tty) return line;
  const text = event.payload.stream === "stderr" ? paint(style, "red", line) : line;
  return `${paint(style, "dim", event.timestamp.slice(11, 19))} ${text}`;
}

async function watchEvents(context: Context, fixedTopic: "*" | "log.line"): Promise<number> {
  const { io, style, values } = context;
  const topic = fixedTopic === "log.line"
    ? "log.line"
    : (values.topic as string | undefined) ?? "*";
  const count = values.count === undefined ? Infinity : Number(values.count);
  if (!(count > 0)) throw new UsageError("--count must be a positive number");
  const hub = client(context);
  let subscription;
  try {
    subscription = hub.subscribe(topic, {
      ...(typeof values.app === "string" && { appId: values.app }),
      ...(typeof values.namespace === "string" && { namespace: values.namespace }),
    });
  } catch (error) {
    await hub.close();
    throw new UsageError((error as Error).message);
  }
  const watch = watchSubscription(context, hub, subscription);
  const notice = watch.notice;
  const region = new LiveRegion(style, io.stdout);
  let printed = 0;
  try {
    for await (const item of subscription) {
      const line = itemLine(context, item, fixedTopic);
      if (line === null) continue;
      if (item.kind === "event") printed++;
      region.render(
        [line],
        style.tty && notice() !== undefined ? [paint(style, "yellow", notice()!)] : [],
      );
      if (printed >= count) break;
    }
  } finally {
    region.clear();
    watch.stop();
    await hub.close();
  }
  return watch.exit() ?? EXIT.ok;
}

function itemLine(context: Context, item: SubscriptionItem, topic: string): string | null {
  const { style, io } = context;
  switch (item.kind) {
    case "event":
      if (context.json) return JSON.stringify(item.event);
      return topic === "log.line" ? logLine(style, item.event) : eventLine(style, item.event);
    case "lagged":
      io.stderr(`herald: the hub dropped ${item.dropped} events (${item.reason})\n`);
      return null;
    case "dropped":
      io.stderr(`herald: ${item.count} events dropped (output too slow)\n`);
      return null;
    case "snapshot":
      io.stderr(`herald: could not resume (${item.reason}); events in between were missed\n`);
      return null;
    default:
      return null;
  }
}

async function publishToken(context: Context): Promise<string | undefined> {
  if (context.token !== undefined) return context.token;
  try {
    return (await context.io.readFile(".herald/publish-token")).trim();
  } catch {
    return undefined;
  }
}

async function* stdinLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of stream) {
    pending += decoder.decode(chunk, { stream: true });
    const lines = pending.split("\n");
    pending = lines.pop()!;
    yield* lines;
  }
  pending += decoder.decode();
  if (pending !== "") yield pending;
}

async function publish(context: Context): Promise<number> {
  const { io, values } = context;
  const token = await publishToken(context);
  if (token === undefined) {
    throw new UsageError(
      "publishing needs the publish token: --token, HERALD_TOKEN or .herald/publish-token",
    );
  }
  const single = values.type !== undefined;
  if (!single && io.stdinIsTerminal) {
    throw new UsageError("give --type, or events on standard input (one JSON object per line)");
  }
  let payload: JsonObject | undefined;
  if (values.payload !== undefined) {
    try {
      payload = JSON.parse(values.payload as string);
    } catch {
      throw new UsageError("--payload must be a JSON object");
    }
  }
  const hub = client(context, token);
  const print = (accepted: { id: string; seq: string }) =>
    io.stdout(context.json ? `${JSON.stringify(accepted)}\n` : `${accepted.id} ${accepted.seq}\n`);
  try {
    if (single) {
      const [accepted] = await hub.publish({
        type: values.type as string,
        ...(typeof values.app === "string" && { appId: values.app }),
        ...(typeof values.namespace === "string" && { namespace: values.namespace }),
        ...(payload !== undefined && { payload }),
        ...(typeof values.id === "string" && { id: values.id }),
      });
      print(accepted!);
      return EXIT.ok;
    }
    let number = 0;
    for await (const line of stdinLines(io.stdin)) {
      number++;
      if (line.trim() === "") continue;
      let event;
      try {
        event = JSON.parse(line);
      } catch {
        io.stderr(`herald: line ${number} is not JSON\n`);
        return EXIT.failed;
      }
      try {
        print((await hub.publish(event))[0]!);
      } catch (error) {
        io.stderr(`herald: line ${number}: ${(error as Error).message}\n`);
        return EXIT.failed;
      }
    }
    return EXIT.ok;
  } finally {
    await hub.close();
  }
}

async function oneShot(
  context: Context,
  ask: (client: HeraldClient) => Promise<JsonObject>,
  show: (context: Context, answer: JsonObject) => string,
): Promise<number> {
  const hub = client(context);
  try {
    const answer = await ask(hub);
    context.io.stdout(`${context.json ? JSON.stringify(answer) : show(context, answer)}\n`);
    return EXIT.ok;
  } catch (error) {
    const reason = hub.lastClose === null ? "" : ` (${hub.lastClose.reason})`;
    context.io.stderr(`herald: ${(error as Error).message}${reason} at ${context.url}\n`);
    return hub.connectionState === "open" ? EXIT.failed : EXIT.unreachable;
  } finally {
    await hub.close();
  }
}

function printState(_context: Context, state: JsonObject): string {
  return JSON.stringify(state, null, 2);
}

/** `herald agents command ID ACTION`: over HTTP, so it can wait for the outcome. */
async function commandAgent(context: Context): Promise<number> {
  const { io, values, positionals } = context;
  const [, , agentId, action] = positionals;
  if (agentId === undefined || action === undefined) {
    throw new UsageError("agents command needs an agent id and an action");
  }
  const token = await publishToken(context);
  if (token === undefined) {
    throw new UsageError(
      "commanding agents needs the publish token: --token, HERALD_TOKEN or .herald/publish-token",
    );
  }
  const wait = values.wait === undefined ? 30 : Number(values.wait);
  if (!(wait >= 0) || !Number.isInteger(wait)) {
    throw new UsageError("--wait must be a whole number of seconds");
  }
  let payload: JsonObject = {};
  if (values.payload !== undefined) {
    try {
      payload = JSON.parse(values.payload as string);
    } catch {
      throw new UsageError("--payload must be a JSON object");
    }
  }
  let response: Response;
  try {
    response = await fetch(
      `${context.url.replace(/\/+$/, "")}/agents/${encodeURIComponent(agentId)}/commands${
        wait > 0 ? `?wait=${wait}s` : ""
      }`,
      {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ action, payload }),
      },
    );
  } catch (error) {
    io.stderr(`herald: ${(error as Error).message} at ${context.url}\n`);
    return EXIT.unreachable;
  }
  const body = await response.json().catch(() => ({})) as JsonObject;
  if (!response.ok) {
    const error = (body.error ?? {}) as JsonObject;
    io.stderr(`herald: ${String(error.message ?? response.statusText)} (${response.status})\n`);
    return EXIT.failed;
  }
  const command = (body.command ?? {}) as JsonObject;
  if (context.json) io.stdout(`${JSON.stringify(body)}\n`);
  else {
    const detail = command.error ?? (command.result ? JSON.stringify(command.result) : "");
    io.stdout(`${body.commandId} ${body.status}${detail ? ` ${detail}` : ""}\n`);
  }
  return ["failed", "timed_out", "agent_lost"].includes(String(body.status))
    ? EXIT.failed
    : EXIT.ok;
}

/** Formats rows as columns as wide as their widest cell (the header's included). */
function columns(header: string[], rows: string[][]): (row: string[]) => string {
  const widths = header.map((title, i) =>
    Math.max(title.length, ...rows.map((row) => row[i]!.length))
  );
  return (row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd();
}

function printAgents(context: Context, answer: JsonObject): string {
  const agents = (answer.agents as JsonObject[] | undefined) ?? [];
  if (agents.length === 0) return "no agents registered";
  const s = context.style;
  const rows = agents.map((agent) => [
    String(agent.agentId),
    agent.online
      ? "online"
      : agent.approvalStatus === "approved"
      ? "offline"
      : String(agent.approvalStatus),
    String(agent.platform || "-"),
    String(agent.region || "-"),
    String(agent.node ?? "-").slice(0, 8),
    String(agent.lastHeartbeat ?? "-").slice(0, 19).replace("T", " "),
  ]);
  const header = ["AGENT", "STATUS", "PLATFORM", "REGION", "NODE", "HEARTBEAT"];
  const format = columns(header, rows);
  return [
    paint(s, "bold", format(header)),
    ...rows.map((row) => row[1] === "online" ? format(row) : paint(s, "red", format(row))),
  ].join("\n");
}

function printApps(context: Context, answer: JsonObject): string {
  const apps = (answer.apps as JsonObject[] | undefined) ?? [];
  if (apps.length === 0) return "no apps yet";
  const s = context.style;
  const rows = apps.map((app) => {
    const run = app.deployment as JsonObject | null;
    const deploy = run === null ? "-" : `${run.status}${run.step ? ` (${run.step})` : ""}`;
    return [
      String(app.appId),
      String(app.status ?? "-"),
      String(app.health ?? "-"),
      deploy,
      String(app.imageTag ?? "-"),
      String(app.updatedAt ?? "-").slice(0, 19).replace("T", " "),
    ];
  });
  const header = ["APP", "STATUS", "HEALTH", "DEPLOY", "IMAGE", "UPDATED"];
  const format = columns(header, rows);
  const colour = (row: string[]) => {
    const line = format(row);
    if (row[3]!.startsWith("failed")) return paint(s, "red", line);
    if (row[3]!.startsWith("running") || row[3]!.startsWith("queued")) {
      return paint(s, "cyan", line);
    }
    return line;
  };
  return [paint(s, "bold", format(header)), ...rows.map(colour)].join("\n");
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
