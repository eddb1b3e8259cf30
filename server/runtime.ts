/**
 * What the runtime Herald finds itself in allows, checked once at start (after logging is set
 * up): where a setting asks for something the runtime lacks, Herald falls back and says so in
 * one log line that names the setting, instead of failing on the first request.
 *
 * - Deno KV (`HERALD_HISTORY=kv`) needs `Deno.openKv`, which Deno only exposes with
 *   `--unstable-kv` or `"unstable": ["kv"]` in deno.json. Deno Deploy takes no runtime flags
 *   and does not document whether it honours the deno.json list, so this is detected at run
 *   time: without it the history falls back to `memory`.
 * - On Deno Deploy (`DENO_DEPLOY=true`), an instance is stopped with SIGINT and killed 5 s
 *   later; a `HERALD_SHUTDOWN_TIMEOUT_MS` of 5000 or more cannot be honoured there.
 * @module
 */

import type { Config } from "./config.ts";
import { logger } from "./log.ts";

/** Deno Deploy sends SIGKILL this long after SIGINT. */
export const DENO_DEPLOY_KILL_AFTER_MS = 5000;

/** What {@linkcode checkRuntime} found: the config to run with and why it changed. */
export interface RuntimeCheck {
  readonly config: Config;
  readonly warnings: readonly string[];
}

/** What the runtime offers; the defaults read the real one. */
export interface RuntimeFacts {
  /** Whether `Deno.openKv` exists (Deno KV enabled). */
  readonly kv: boolean;
  /** Whether this runs on Deno Deploy (`DENO_DEPLOY=true`, set by the platform). */
  readonly denoDeploy: boolean;
}

/** The facts of the runtime this process runs in. */
export function runtimeFacts(): RuntimeFacts {
  let denoDeploy = false;
  try {
    denoDeploy = Deno.env.get("DENO_DEPLOY") === "true";
  } catch {
    // No env permission: not knowable, and then not Deno Deploy (which grants everything).
  }
  return { kv: typeof (Deno as { openKv?: unknown }).openKv === "function", denoDeploy };
}

/**
 * Adapts `config` to `facts`, returning the config to run with and one message per change.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadConfig } from "./config.ts";
 * import { adaptToRuntime } from "./runtime.ts";
 * const { config, warnings } = adaptToRuntime(loadConfig({ HERALD_HISTORY: "kv" }), {
 *   kv: false,
 *   denoDeploy: false,
 * });
 * assert.equal(config.history, "memory");
 * assert.equal(warnings.length, 1);
 * ```
 */
export function adaptToRuntime(config: Config, facts: RuntimeFacts): RuntimeCheck {
  const warnings: string[] = [];
  let adapted = config;
  if (config.history === "kv" && !facts.kv) {
    warnings.push(
      'HERALD_HISTORY=kv, but this runtime has no Deno KV (Deno.openKv is missing: run with --unstable-kv or keep "unstable": ["kv"] in deno.json); using HERALD_HISTORY=memory instead, so history does not survive a restart',
    );
    adapted = { ...adapted, history: "memory" };
  }
  if (facts.denoDeploy && adapted.history === "kv" && adapted.kvPath !== undefined) {
    warnings.push(
      "HERALD_KV_PATH is set on Deno Deploy: that file belongs to one instance and is lost when it stops; unset it to use the app's managed Deno KV database",
    );
  }
  if (facts.denoDeploy && adapted.shutdownTimeoutMs >= DENO_DEPLOY_KILL_AFTER_MS) {
    warnings.push(
      `HERALD_SHUTDOWN_TIMEOUT_MS=${adapted.shutdownTimeoutMs}, but Deno Deploy kills an instance ${DENO_DEPLOY_KILL_AFTER_MS} ms after SIGINT; set it to 4000`,
    );
  }
  return { config: adapted, warnings };
}

/** Checks the real runtime, logs every change as a warning and returns the config to run. */
export function checkRuntime(config: Config): Config {
  const { config: adapted, warnings } = adaptToRuntime(config, runtimeFacts());
  const log = logger("runtime");
  for (const warning of warnings) log.warning(warning);
  return adapted;
}
