/**
 * Logging through LogTape: structured records, levels, text for people or JSON lines for
 * machines. `flushLogs` is awaited on shutdown so the last records are written.
 *
 * Every record passes through one redaction step before any sink sees it: `token=` query
 * values, `Authorization` values, bearer tokens and every secret registered with
 * {@linkcode redactSecret} (the publish token) are replaced by `[redacted]`, in the message,
 * in the properties and in the message and stack of errors, whatever path a value took.
 *
 * OpenTelemetry: where Deno exports telemetry (`OTEL_DENO=true`, and on Deno Deploy), it
 * exports everything written through `console` as OTel log records, with the severity of the
 * console method and the trace of the request being served. So there every record goes
 * through `console` (JSON lines too, which otherwise go straight to stdout): one pipeline,
 * Deno's, configured by the `OTEL_*` variables Deno reads. `@logtape/otel` is not used: it
 * builds a second exporter pipeline (its own SDK packages and endpoint settings) beside Deno's.
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
  type LogRecord,
  type Sink,
} from "@logtape/logtape";
import type { Config } from "./config.ts";

/** What replaces a secret in a log line. */
export const REDACTED = "[redacted]";

const secrets = new Set<string>();

/** Registers a secret value (the publish token) that no log line may contain. */
export function redactSecret(value: string): void {
  if (value.length > 0) secrets.add(value);
}

const PATTERNS: readonly [RegExp, string][] = [
  // `token=` in a query string or any text that embeds a URL.
  [/(token=)[^&\s'"#<>]*/gi, `$1${REDACTED}`],
  // `Authorization: <value>` / `"authorization":"<value>"`.
  [/(authorization["']?\s*[:=]\s*["']?)[^"'\r\n,}]*/gi, `$1${REDACTED}`],
  [/(bearer\s+)[^\s"',}]+/gi, `$1${REDACTED}`],
];

/** `text` with every token, authorization value and registered secret replaced. */
export function redact(text: string): string {
  let out = text;
  for (const secret of secrets) out = out.replaceAll(secret, REDACTED);
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

function redactValue(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return redact(value);
  if (value === null || typeof value !== "object" || depth > 4) return value;
  if (value instanceof Error) {
    const copy = new Error(redact(value.message));
    copy.name = value.name;
    if (value.stack !== undefined) copy.stack = redact(value.stack);
    return copy;
  }
  if (Array.isArray(value)) return value.map((item) => redactValue(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    out[key] = /^authorization$|token/i.test(key) && typeof item === "string"
      ? REDACTED
      : redactValue(item, depth + 1);
  }
  return out;
}

/** A record with every secret scrubbed (see the module doc). */
export function redactRecord(record: LogRecord): LogRecord {
  return {
    ...record,
    message: record.message.map((part) => redactValue(part)),
    rawMessage: typeof record.rawMessage === "string"
      ? redact(record.rawMessage)
      : record.rawMessage,
    properties: redactValue(record.properties) as Record<string, unknown>,
  };
}

/** Wraps a sink so it only ever sees redacted records. */
function redacting(sink: Sink & Partial<AsyncDisposable & Disposable>): Sink {
  const wrapped = (record: LogRecord) => sink(redactRecord(record));
  // LogTape flushes a sink on dispose() through these symbols: the stream sink buffers, so a
  // wrapper without them would lose the last lines at shutdown.
  return Object.assign(wrapped, {
    ...(sink[Symbol.asyncDispose] && { [Symbol.asyncDispose]: () => sink[Symbol.asyncDispose]!() }),
    ...(sink[Symbol.dispose] && { [Symbol.dispose]: () => sink[Symbol.dispose]!() }),
  });
}

/**
 * Whether Deno exports this process's telemetry: `OTEL_DENO=true`, or Deno Deploy
 * (`DENO_DEPLOY=true`), which collects it by itself.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { denoExportsTelemetry } from "./log.ts";
 * assert.equal(denoExportsTelemetry({ OTEL_DENO: "true" }), true);
 * assert.equal(denoExportsTelemetry({ OTEL_DENO: "false" }), false);
 * ```
 */
export function denoExportsTelemetry(env: Readonly<Record<string, string>>): boolean {
  return env.OTEL_DENO === "true" || env.DENO_DEPLOY === "true";
}

/**
 * The sink that writes records out: text on the console; JSON lines on stdout, or through the
 * console when Deno exports console output as OpenTelemetry logs (see the module doc).
 */
function outputSink(format: Config["logFormat"], throughConsole: boolean): Sink {
  if (format !== "json") return getConsoleSink();
  if (throughConsole) return getConsoleSink({ formatter: jsonLinesFormatter });
  return getStreamSink(Deno.stdout.writable, { formatter: jsonLinesFormatter });
}

/**
 * Configures the `herald` logger category from the config; `env` (the process environment)
 * says whether Deno exports console output ({@linkcode denoExportsTelemetry}).
 */
export async function setUpLogging(
  config: Pick<Config, "logLevel" | "logFormat">,
  env: Readonly<Record<string, string>> = {},
): Promise<void> {
  await configure({
    reset: true,
    sinks: { out: redacting(outputSink(config.logFormat, denoExportsTelemetry(env))) },
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
