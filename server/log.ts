/**
 * Logging through LogTape: structured records, levels, text for people or JSON lines for
 * machines. `flushLogs` is awaited on shutdown so the last records are written.
 * @module
 */

import {
  configure,
  dispose,
  getConsoleSink,
  getLogger,
  getStreamSink,
  jsonLinesFormatter,
  type Logger,
} from "@logtape/logtape";
import type { Config } from "./config.ts";

/** Configures the `herald` logger category from the config. */
export async function setUpLogging(config: Pick<Config, "logLevel" | "logFormat">): Promise<void> {
  await configure({
    reset: true,
    sinks: {
      out: config.logFormat === "json"
        ? getStreamSink(Deno.stdout.writable, { formatter: jsonLinesFormatter })
        : getConsoleSink(),
    },
    loggers: [
      { category: ["herald"], lowestLevel: config.logLevel, sinks: ["out"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["out"] },
    ],
  });
}

/** A logger under the `herald` category. */
export function logger(...category: string[]): Logger {
  return getLogger(["herald", ...category]);
}

/** Writes out buffered records and releases the sinks. */
export function flushLogs(): Promise<void> {
  return dispose();
}
