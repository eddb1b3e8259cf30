/**
 * A publisher process: POSTs events to `/events` at a steady rate, one event per request, each
 * carrying its publish time (`payload.t`, ms since the epoch) and padding up to the payload size
 * given with each `run` command.
 * Event `i` goes to app `app-<i mod apps>` (no appId when `apps` is 0).
 *
 * Spawned by the runner with `LoadProcess` (see `_worker.ts`); not meant to be run by hand.
 * @module
 */

import { wallClockMs } from "./_stats.ts";
import { type Message, serveCommands } from "./_worker.ts";

/** What one publisher sends. */
export interface PublisherSpec {
  readonly url: string;
  readonly token: string;
  readonly apps: number;
}

/** Requests in flight at once; past this the publisher falls behind and says so. */
const MAX_IN_FLIGHT = 64;
const TICK_MS = 2;

let spec: PublisherSpec;
let pad = "";

function body(index: number): string {
  // `{"t":1700000000000.123,"pad":""}` is 32 characters; the pad fills the rest.
  const payload = `{"t":${wallClockMs().toFixed(3)},"pad":"${pad}"}`;
  const app = spec.apps > 0 ? `"appId":"app-${index % spec.apps}",` : "";
  return `{"type":"bench.tick",${app}"payload":${payload}}`;
}

async function run(rate: number, seconds: number, payloadBytes: number): Promise<Message> {
  pad = "x".repeat(Math.max(0, payloadBytes - 32));
  const total = Math.round(rate * seconds);
  const headers = {
    authorization: `Bearer ${spec.token}`,
    "content-type": "application/json",
  };
  let sent = 0;
  let accepted = 0;
  let failed = 0;
  let firstFailure = "";
  let inFlight = 0;
  let maxBehind = 0;
  const pending = new Set<Promise<void>>();
  const post = async (index: number) => {
    try {
      const response = await fetch(`${spec.url}/events`, {
        method: "POST",
        headers,
        body: body(index),
      });
      await response.body?.cancel();
      if (response.status === 202) accepted++;
      else {
        failed++;
        firstFailure ||= `HTTP ${response.status}`;
      }
    } catch (error) {
      failed++;
      firstFailure ||= String(error);
    }
  };
  const started = performance.now();
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - started) * rate) / 1000) + 1);
    maxBehind = Math.max(maxBehind, due - sent);
    while (sent < due && inFlight < MAX_IN_FLIGHT) {
      inFlight++;
      const request = post(sent++).finally(() => {
        inFlight--;
        pending.delete(request);
      });
      pending.add(request);
    }
    await new Promise((resolve) => setTimeout(resolve, TICK_MS));
  }
  await Promise.all(pending);
  return {
    sent,
    accepted,
    failed,
    firstFailure,
    maxBehind,
    elapsedMs: performance.now() - started,
  };
}

function setup(given: PublisherSpec): Promise<Message> {
  spec = given;
  return Promise.resolve({ ready: true });
}

function handle(command: Message): Promise<Message> | Message {
  if (command.cmd === "run") return run(command.rate, command.seconds, command.payloadBytes);
  return { error: `unknown command ${command.cmd}` };
}

if (import.meta.main) await serveCommands(setup, handle);
