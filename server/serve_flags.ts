/**
 * Prints the `deno serve` flags for the configured address (`--port=<PORT> --host=<HERALD_HOSTNAME>`),
 * defaults included. `deno task start:parallel` splices them in: deno task expands `$PORT` but
 * has no `${PORT:-8800}`, and `deno serve` takes its address only from its own flags.
 * @module
 */

import { ConfigError, loadConfig, processEnv } from "./config.ts";

try {
  const config = loadConfig(processEnv());
  console.log(`--port=${config.port} --host=${config.hostname}`);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  Deno.exit(2);
}
