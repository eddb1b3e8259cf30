/**
 * `GET /events/stream`: the event stream as Server-Sent Events, for `curl -N` and the browser's
 * `EventSource`. Each event is `event: <type>`, `id: <seq>`, `data: <the WebSocket frame>`;
 * replies and notices (`response`, `lagged`) come as events of that name without an id, the
 * expiry warning as `token_expiring` (`error` would reach EventSource's `onerror`). Resume with
 * `Last-Event-ID` (sent by EventSource on reconnect) or `?since=`; a comment heartbeat keeps
 * proxies from closing an idle stream.
 *
 * The client behind the stream is an ordinary hub client with the same bounded queue and pump:
 * the transport's `bufferedAmount` is the bytes the response stream holds that the HTTP server
 * has not taken yet, so a reader that stops reading stops the pump and, past the stall
 * timeout or a full queue, is closed as a slow consumer like a WebSocket.
 * @module
 */

import { type Clock, systemClock } from "../../hub/clock.ts";
import { type ExpiryWarning, ExpiryWatch } from "../../hub/expiry.ts";
import type { Hub } from "../../hub/hub.ts";
import type { Principal } from "../../hub/principal.ts";
import type { Outgoing, Transport } from "../../hub/transport.ts";
import type { Config } from "../config.ts";
import type { Authenticator } from "../auth.ts";
import { admitStream, subscribeInitial } from "./_initial.ts";

/** What the SSE endpoint needs. */
export interface SseDeps {
  readonly hub: Hub;
  readonly config: Pick<
    Config,
    "allowedOrigins" | "sseHeartbeatSeconds" | "maxSubscriptions" | "expiryWarningSeconds"
  >;
  /** Decides who reads the stream, and so its tenant. */
  readonly auth: Authenticator;
  /** Warns, then ends the stream, as the reader's credential expires; none: the system clock. */
  readonly clock?: Clock;
  /** Takes a connection slot for the reader (returns its release) or answers why not. */
  readonly admit?: (principal: Principal) => (() => void) | Response;
}

/**
 * A stream cannot present a new credential: the warning is its own event (not `error`, which
 * EventSource reports as a failure), and the reader reconnects with a new token.
 */
export const SSE_EXPIRY_WARNING: ExpiryWarning = {
  type: "token_expiring",
  advice: "reconnect with a new token (Last-Event-ID resumes where this stream ends)",
};

const encoder = new TextEncoder();
/**
 * Turns one outgoing frame into an SSE message: named by its type, with the event's cursor as
 * its id (replies and notices have none). The frame is not parsed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sseMessage } from "./sse.ts";
 * const frame = '{"type":"deploy.step","seq":"e1-7"}';
 * assert.equal(
 *   sseMessage({ frame, type: "deploy.step", seq: "e1-7" }),
 *   `event: deploy.step\nid: e1-7\ndata: ${frame}\n\n`,
 * );
 * ```
 */
export function sseMessage({ frame, type, seq }: Outgoing): string {
  if (seq === undefined) return `event: ${type}\ndata: ${frame}\n\n`;
  return `event: ${type}\nid: ${seq}\ndata: ${frame}\n\n`;
}

/** An SSE response body and the hub transport that writes into it. */
export interface SseStream {
  readonly body: ReadableStream<Uint8Array>;
  readonly transport: Transport;
  /** Writes a comment line (heartbeat) unless the stream is closed. */
  comment(text: string): void;
  /** Resolves when the stream ended, from either side. */
  readonly ended: Promise<void>;
}

/**
 * A byte stream whose queue is counted in bytes with a high-water mark of 0: every byte
 * queued is a byte the reader has not taken, which is exactly the transport's
 * `bufferedAmount`.
 */
export function sseStream(onCancel: () => void): SseStream {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let open = true;
  let endedResolve!: () => void;
  const ended = new Promise<void>((resolve) => (endedResolve = resolve));
  const end = () => {
    if (!open) return;
    open = false;
    endedResolve();
  };
  const body = new ReadableStream<Uint8Array>(
    {
      start: (c) => {
        controller = c;
      },
      cancel: () => {
        end();
        onCancel();
      },
    },
    { highWaterMark: 0, size: (chunk) => chunk.byteLength },
  );
  const write = (text: string) => {
    if (open) controller.enqueue(encoder.encode(text));
  };
  const transport: Transport = {
    send: (outgoing) => write(sseMessage(outgoing)),
    get bufferedAmount() {
      return open ? Math.max(0, -(controller.desiredSize ?? 0)) : 0;
    },
    close: (code, reason) => {
      if (!open) return;
      write(`event: close\ndata: ${JSON.stringify({ code, reason })}\n\n`);
      end();
      controller.close();
    },
  };
  return { body, transport, comment: (text) => write(`: ${text}\n\n`), ended };
}

/** Handles `GET /events/stream`. */
export async function handleSse(request: Request, deps: SseDeps): Promise<Response> {
  const admitted = await admitStream(request, deps.config, deps.auth, "read");
  if (admitted instanceof Response) return admitted;
  const { initial, principal } = admitted;
  const slot = deps.admit?.(principal);
  if (slot instanceof Response) return slot;
  const since = request.headers.get("last-event-id") ?? initial.since;
  let closed = () => {};
  const stream = sseStream(() => closed());
  const client = deps.hub.connect(
    stream.transport,
    principal,
    "sse",
  );
  closed = () => client.transportClosed();
  stream.comment("herald event stream");
  subscribeInitial(deps.hub, client, { ...initial, since });
  heartbeat(stream, deps.config.sseHeartbeatSeconds);
  if (principal.expiresAt != null) {
    // At expiry the stream ends with `event: close` (4001): reconnect with a new token.
    const expiry = new ExpiryWatch(client, {
      clock: deps.clock ?? systemClock,
      warningMs: deps.config.expiryWarningSeconds * 1000,
      warning: SSE_EXPIRY_WARNING,
    });
    expiry.arm(principal.expiresAt);
    void stream.ended.then(() => expiry.stop());
  }
  const headers: Record<string, string> = {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
  };
  // A browser page reads a stream from another origin only when the response names its origin
  // (CORS); the origin was checked above.
  const origin = request.headers.get("origin");
  if (origin !== null) {
    Object.assign(headers, { "access-control-allow-origin": origin, vary: "origin" });
  }
  return new Response(stream.body, { headers });
}

/** Writes a comment every `HERALD_SSE_HEARTBEAT` seconds until the stream ends. */
function heartbeat(stream: SseStream, seconds: number): void {
  const timer = setInterval(() => stream.comment("heartbeat"), seconds * 1000);
  void stream.ended.then(() => clearInterval(timer));
}
