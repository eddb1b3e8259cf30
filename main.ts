/**
 * Herald's composition root: read the config, build the pieces, serve, and shut down cleanly
 * on SIGTERM or SIGINT. Runs two ways:
 * - `deno run main.ts` (`deno task start`): calls `Deno.serve` itself on `PORT`.
 * - `deno serve [--parallel] main.ts` (`deno task start:parallel`): every isolate evaluates
 *   this module, builds its own app at top level and hands `deno serve` its default export
 *   `{ fetch }`; `deno serve` owns the listener and its `--port`.
 * Under `deno run`, Deno prints a hint that the module has `export default { fetch }`; it is
 * harmless (the module serves itself).
 * @module
 */

import type { App } from "./server/app.ts";
import { createApp } from "./server/app.ts";
import { createBus } from "./server/buses.ts";
import { type Config, ConfigError, loadConfig, processEnv } from "./server/config.ts";
import { IsolateRoll, parallelIsolates } from "./server/isolates.ts";
import { flushLogs, logger, setUpLogging } from "./server/log.ts";
import { checkRuntime } from "./server/runtime.ts";
import { httpError } from "./server/responses.ts";
import { loadPublishToken } from "./server/token.ts";

/**
 * Resolves with whether `deno serve` took this module's default export. `import.meta.main` is
 * true under `deno run`, `deno serve` and in every `--parallel` worker alike; but `deno serve`
 * registers the export by calling the global `Deno.serve` right after the module is evaluated,
 * before any timer fires. So watch that call for one timer turn.
 */
function watchForDenoServe(): Promise<boolean> {
  const real = Deno.serve;
  let called = false;
  Deno.serve = ((...args: Parameters<typeof Deno.serve>) => {
    called = true;
    Deno.serve = real;
    return real(...args);
  }) as typeof Deno.serve;
  return new Promise((resolve) =>
    setTimeout(() => {
      Deno.serve = real;
      resolve(called);
    }, 0)
  );
}

async function build(): Promise<{ config: Config; app: App }> {
  let config;
  try {
    config = loadConfig(processEnv(), Deno.args);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    Deno.exit(2);
  }
  await setUpLogging(config);
  config = checkRuntime(config);
  const log = logger("server");
  const { token, source } = await loadPublishToken(config.publishToken, config.dataDir);
  if (source.kind === "file") {
    log.info(
      source.created
        ? "Generated a publish token and stored it in {path}"
        : "Using the publish token stored in {path}",
      { path: source.path },
    );
  } else if (source.kind === "ephemeral") {
    log.warning(
      "Could not store a publish token ({reason}); this run uses a random one nobody knows: set HERALD_PUBLISH_TOKEN",
      { reason: source.reason },
    );
  }
  const node = crypto.randomUUID();
  const bus = await createBus(config, node);
  const app = createApp(config, token, undefined, { bus, node });
  await app.hub.start();
  return { config, app };
}

/**
 * Runs `shutdown` once on SIGTERM or SIGINT, then exits; exits with 1 if it takes longer than
 * `HERALD_SHUTDOWN_TIMEOUT_MS`.
 */
function onSignals(
  config: Config,
  shutdown: () => Promise<void>,
  beforeExit: () => Promise<void> = () => Promise.resolve(),
): void {
  const log = logger("server");
  let stopping = false;
  const handle = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info("Received {signal}; shutting down", { signal });
    const deadline = setTimeout(() => {
      log.error("Shutdown took longer than {ms} ms; exiting anyway", {
        ms: config.shutdownTimeoutMs,
      });
      flushLogs().finally(() => Deno.exit(1));
    }, config.shutdownTimeoutMs);
    await shutdown();
    log.info("Shut down cleanly");
    await flushLogs();
    await beforeExit();
    clearTimeout(deadline);
    Deno.exit(0);
  };
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(signal, () => void handle(signal));
  }
}

/** `deno run`: serve on the configured port. */
async function serveItself(config: Config, app: App): Promise<void> {
  const log = logger("server");
  const server = Deno.serve({
    port: config.port,
    hostname: config.hostname,
    // The handler answers every fault itself; this is the last resort, so that nothing reaches
    // stderr as a stack trace (it would bypass the log format, level and redaction).
    onError: (error) => {
      log.error("Unexpected fault in the HTTP server: {error}", { error });
      return httpError("internal_error", "the server failed to answer this request");
    },
    onListen: ({ hostname, port }) => {
      log.info("Herald listening on {url}", {
        url: `http://${hostname}:${port}`,
        hostname,
        port,
        bus: app.hub.bus.kind,
        history: app.hub.history.kind,
      });
    },
  }, app.handler);
  onSignals(config, async () => {
    app.drain();
    await server.shutdown();
    await app.hub.bus.close();
    await app.hub.history.close();
  });
  await server.finished;
}

/** `deno serve`: this isolate answers through the default export; deno serve listens. */
function serveThroughDenoServe(config: Config, app: App): void {
  const isolates = new IsolateRoll(app.node, parallelIsolates());
  logger("server").info("Herald isolate {node} ready under deno serve", {
    node: app.node,
    bus: app.hub.bus.kind,
    history: app.hub.history.kind,
  });
  // The first isolate to exit ends the process: exit once every isolate finished.
  onSignals(config, async () => {
    app.drain();
    await app.hub.bus.close();
    await app.hub.history.close();
  }, () => isolates.stopped());
}

/** Under `deno serve`, every isolate's handler; `deno run` serves it itself. */
const built = import.meta.main ? await build() : null;
export default built === null ? {} : { fetch: built.app.handler };

if (built !== null) {
  const { config, app } = built;
  watchForDenoServe().then((served) =>
    served ? serveThroughDenoServe(config, app) : serveItself(config, app)
  );
}
