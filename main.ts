/**
 * Herald's composition root: read the config, build the pieces, serve, and shut down cleanly
 * on SIGTERM or SIGINT.
 * @module
 */

import { createApp } from "./server/app.ts";
import { ConfigError, loadConfig, processEnv } from "./server/config.ts";
import { flushLogs, logger, setUpLogging } from "./server/log.ts";
import { loadPublishToken } from "./server/token.ts";

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(processEnv(), Deno.args);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    Deno.exit(2);
  }
  await setUpLogging(config);
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
  const app = createApp(config, token);
  await app.hub.start();
  const server = Deno.serve({
    port: config.port,
    hostname: config.hostname,
    onListen: ({ hostname, port }) => {
      log.info("Herald listening on http://{hostname}:{port}", {
        hostname,
        port,
        bus: app.hub.bus.kind,
        history: app.hub.history.kind,
      });
    },
  }, app.handler);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info("Received {signal}; shutting down", { signal });
    const deadline = setTimeout(() => {
      log.error("Shutdown took longer than {ms} ms; exiting anyway", {
        ms: config.shutdownTimeoutMs,
      });
      flushLogs().finally(() => Deno.exit(1));
    }, config.shutdownTimeoutMs);
    app.drain();
    await server.shutdown();
    await app.hub.bus.close();
    await app.hub.history.close();
    log.info("Shut down cleanly");
    clearTimeout(deadline);
    await flushLogs();
    Deno.exit(0);
  };
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(signal, () => void shutdown(signal));
  }
  await server.finished;
}

if (import.meta.main) await main();
