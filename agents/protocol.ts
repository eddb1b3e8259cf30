/**
 * The agent endpoint's wire protocol, as StreamSpace agents speak it: JSON text frames
 * `{"type", "timestamp", "payload"}`. Agent to hub: `heartbeat`, `ack`, `complete`, `failed`,
 * `status`, `pong` and the VNC tunnel frames; hub to agent: `command`, `ping`, `shutdown` and
 * `error`. Timestamps are RFC 3339 with nanoseconds. Plain data: no I/O, no timers.
 * @module
 */

import { isJsonObject, type JsonObject } from "../events/json.ts";

/** One frame an agent sent, decoded; `invalid` says why it could not be. */
export type AgentFrame =
  | {
    readonly type: "heartbeat";
    readonly status: string;
    readonly activeSessions: number | null;
    readonly capacity: JsonObject | null;
  }
  | { readonly type: "ack"; readonly commandId: string }
  | { readonly type: "complete"; readonly commandId: string; readonly result: JsonObject }
  | { readonly type: "failed"; readonly commandId: string; readonly error: string }
  | { readonly type: "status"; readonly payload: JsonObject }
  | { readonly type: "pong" }
  | { readonly type: "vnc"; readonly kind: string; readonly payload: JsonObject }
  | { readonly type: "invalid"; readonly reason: string };

/** The VNC tunnel frames StreamSpace agents may send. */
export const VNC_FRAMES: ReadonlySet<string> = new Set(["vnc_ready", "vnc_data", "vnc_error"]);

/**
 * Decodes one text frame from an agent. Never throws: a frame it cannot use is `invalid`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeAgentFrame } from "./protocol.ts";
 * const ack = decodeAgentFrame('{"type":"ack","timestamp":"2026-01-02T03:04:05.123456789+01:00","payload":{"commandId":"c1"}}');
 * assert.deepEqual(ack, { type: "ack", commandId: "c1" });
 * assert.equal(decodeAgentFrame("nope").type, "invalid");
 * ```
 */
export function decodeAgentFrame(text: string): AgentFrame {
  let frame: unknown;
  try {
    frame = JSON.parse(text);
  } catch {
    return { type: "invalid", reason: "the frame is not JSON" };
  }
  if (!isJsonObject(frame) || typeof frame.type !== "string") {
    return { type: "invalid", reason: "the frame is not an object with a string type" };
  }
  const payload = isJsonObject(frame.payload) ? frame.payload : {};
  // commandId in the payload (StreamSpace), or beside it.
  const commandId = stringField(payload, "commandId") ?? stringField(frame, "commandId");
  switch (frame.type) {
    case "heartbeat":
      return {
        type: "heartbeat",
        status: stringField(payload, "status") ?? "online",
        activeSessions: typeof payload.activeSessions === "number" ? payload.activeSessions : null,
        capacity: isJsonObject(payload.capacity) ? payload.capacity : null,
      };
    case "ack":
    case "complete":
    case "failed": {
      if (commandId === null) {
        return { type: "invalid", reason: `a ${frame.type} frame needs payload.commandId` };
      }
      if (frame.type === "ack") return { type: "ack", commandId };
      if (frame.type === "complete") {
        const result = payload.result;
        return {
          type: "complete",
          commandId,
          result: isJsonObject(result) ? result : result === undefined ? {} : { value: result },
        };
      }
      const error = payload.error;
      return {
        type: "failed",
        commandId,
        error: typeof error === "string" ? error : JSON.stringify(error ?? "failed"),
      };
    }
    case "status":
      return { type: "status", payload };
    case "pong":
      return { type: "pong" };
    default:
      if (VNC_FRAMES.has(frame.type)) return { type: "vnc", kind: frame.type, payload };
      return { type: "invalid", reason: `unknown frame type "${frame.type.slice(0, 64)}"` };
  }
}

function stringField(object: JsonObject, field: string): string | null {
  const value = object[field];
  return typeof value === "string" && value.length > 0 ? value : null;
}

/**
 * `ms` (milliseconds since the epoch) as RFC 3339 in UTC with nine fractional digits, the form
 * Go's `time.RFC3339Nano` parses (StreamSpace agents are written in Go).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rfc3339Nano } from "./protocol.ts";
 * assert.equal(rfc3339Nano(Date.UTC(2026, 0, 2, 3, 4, 5, 67)), "2026-01-02T03:04:05.067000000Z");
 * ```
 */
export function rfc3339Nano(ms: number): string {
  const iso = new Date(ms).toISOString(); // 2026-01-02T03:04:05.067Z
  return `${iso.slice(0, 23)}000000Z`;
}

/**
 * The `command` frame that carries a command to an agent.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { commandFrame } from "./protocol.ts";
 * const frame = JSON.parse(commandFrame("c1", "stop_session", { sessionId: "s1" }, 0));
 * assert.deepEqual(frame, {
 *   type: "command",
 *   timestamp: "1970-01-01T00:00:00.000000000Z",
 *   payload: { commandId: "c1", action: "stop_session", payload: { sessionId: "s1" } },
 * });
 * ```
 */
export function commandFrame(
  commandId: string,
  action: string,
  payload: JsonObject,
  nowMs: number,
): string {
  return JSON.stringify({
    type: "command",
    timestamp: rfc3339Nano(nowMs),
    payload: { commandId, action, payload },
  });
}

/**
 * The application `ping` frame; the agent answers `pong`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pingFrame } from "./protocol.ts";
 * const frame = JSON.parse(pingFrame(0));
 * assert.equal(frame.type, "ping");
 * assert.equal(frame.payload.timestamp, frame.timestamp);
 * ```
 */
export function pingFrame(nowMs: number): string {
  const timestamp = rfc3339Nano(nowMs);
  return JSON.stringify({ type: "ping", timestamp, payload: { timestamp } });
}

/**
 * The `shutdown` frame: a StreamSpace agent that gets it stops for good.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { shutdownFrame } from "./protocol.ts";
 * assert.equal(shutdownFrame("hub stopped"), '{"type":"shutdown","payload":{"reason":"hub stopped"}}');
 * ```
 */
export function shutdownFrame(reason: string): string {
  return JSON.stringify({ type: "shutdown", payload: { reason } });
}

/**
 * An `error` frame answering an agent frame the hub cannot use (agents log and ignore it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { errorFrame } from "./protocol.ts";
 * const frame = JSON.parse(errorFrame("bad_message", "the frame is not JSON", 0));
 * assert.equal(frame.payload.code, "bad_message");
 * ```
 */
export function errorFrame(code: string, message: string, nowMs: number): string {
  return JSON.stringify({
    type: "error",
    timestamp: rfc3339Nano(nowMs),
    payload: { code, message },
  });
}

/** Close codes of the agent endpoint (see docs/protocol.md, "Agents"). */
export const AGENT_CLOSE = {
  /** Hub restart: the agent reconnects. */
  shutdown: { code: 1001, reason: "server shutting down", reconnect: true },
  /** A newer connection with the same agent_id took over. */
  replaced: { code: 4520, reason: "replaced by a newer connection", reconnect: false },
  /** No heartbeat for longer than the stale window. */
  stale: { code: 4020, reason: "no heartbeat in time", reconnect: true },
  /** The agent was rejected (or its registration removed) while connected. */
  rejected: { code: 4521, reason: "agent rejected", reconnect: false },
} as const;
