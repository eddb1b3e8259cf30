/**
 * `POST /events`: producers publish one event or an array of them. A batch is all or
 * nothing: one invalid event rejects the whole batch and nothing is published.
 * @module
 */

import { decodeEventInput, type EventInput } from "../events/envelope.ts";
import type { Hub } from "../hub/hub.ts";
import type { Metrics } from "../hub/metrics.ts";
import { mayPublishType } from "../hub/principal.ts";
import { eventTenant, type PublishAllowance, TENANT_FIELD_MESSAGE } from "../hub/session.ts";
import type { Config } from "./config.ts";
import { httpError, type HttpErrorCode, json } from "./responses.ts";
import type { Authenticator } from "./auth.ts";
import { answerError, refuse } from "./errors.ts";

/** What the publish endpoint needs. */
export interface PublishDeps {
  readonly hub: Hub;
  readonly metrics: Metrics;
  readonly config: Pick<
    Config,
    "maxBodyBytes" | "maxBatch" | "strictEvents" | "bodyTimeoutMs" | "maxEventDepth"
  >;
  /** Decides who publishes, and so the tenant the events belong to. */
  readonly auth: Authenticator;
  /** Publish requests per credential: null when allowed, else the seconds to wait. */
  readonly publishAllowance?: PublishAllowance;
}

/** The body did not arrive within `HERALD_BODY_TIMEOUT_MS`. */
export const TIMED_OUT = Symbol("timed out");

/**
 * Reads a body up to `limit` bytes within `timeoutMs`; null when it is longer, `TIMED_OUT` when
 * it is still incomplete at the deadline. A timed-out read is cancelled and its chunks released;
 * Deno.serve keeps the connection itself open until the peer sends the rest or closes it.
 */
export async function readLimited(
  request: Request,
  limit: number,
  timeoutMs: number,
): Promise<Uint8Array | null | typeof TIMED_OUT> {
  const declared = Number(request.headers.get("content-length") ?? NaN);
  if (declared > limit) return null;
  if (request.body === null) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = request.body.getReader();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    reader.cancel().catch(() => {});
  }, timeoutMs);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      // A cancelled read ends as `done`: never take a cut-off body for a whole one.
      if (timedOut) return TIMED_OUT;
      if (done) break;
      total += value.byteLength;
      if (total > limit) {
        await reader.cancel();
        return null;
      }
      chunks.push(value);
    }
  } catch (error) {
    if (timedOut) return TIMED_OUT;
    throw error;
  } finally {
    clearTimeout(timer);
  }
  const body = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}

/** Handles `POST /events`. */
export async function handlePublish(request: Request, deps: PublishDeps): Promise<Response> {
  const fail = (code: HttpErrorCode, message: string, extra = {}, headers = {}) => {
    deps.metrics.errorsSent.incLabel(code);
    return httpError(code, message, extra, headers);
  };
  const authentication = await deps.auth.authenticate(request, "publish");
  if (!authentication.ok) {
    deps.metrics.errorsSent.incLabel(authentication.refusal.code);
    deps.metrics.authRefusals.incLabel(authentication.refusal.code);
    return refuse(authentication.refusal);
  }
  const who = authentication.principal;
  const wait = deps.publishAllowance?.(who) ?? null;
  if (wait !== null) {
    return fail(
      "rate_limited",
      `this credential publishes faster than HERALD_PUBLISH_RATE; retry in ${wait} s`,
      {},
      { "retry-after": String(wait) },
    );
  }
  const contentType = request.headers.get("content-type") ?? "";
  if (!/^application\/json\s*(;|$)/i.test(contentType)) {
    return fail("unsupported_media_type", "the body must be application/json");
  }
  const { maxBodyBytes, maxBatch, strictEvents, bodyTimeoutMs, maxEventDepth } = deps.config;
  const body = await readLimited(request, maxBodyBytes, bodyTimeoutMs);
  if (body === TIMED_OUT) {
    return fail("request_timeout", `the body did not arrive within ${bodyTimeoutMs} ms`, {}, {
      connection: "close",
    });
  }
  if (body === null) return fail("body_too_large", `the body is larger than ${maxBodyBytes} bytes`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch {
    return fail("bad_json", "the body is not valid UTF-8 JSON");
  }
  const raws = Array.isArray(parsed) ? parsed : [parsed];
  if (raws.length === 0) return fail("bad_event", "the batch is empty", { index: 0 });
  if (raws.length > maxBatch) {
    return fail("batch_too_large", `a batch holds at most ${maxBatch} events, got ${raws.length}`);
  }
  // Events by tenant, in batch order; one tenant unless the credential names them per event.
  const byTenant = new Map<string, { index: number; input: EventInput }[]>();
  for (const [index, raw] of raws.entries()) {
    const named = eventTenant(raw, who);
    const decoded = decodeEventInput(named.raw, { strict: strictEvents, maxDepth: maxEventDepth });
    if (!decoded.ok) return fail("bad_event", decoded.message, { index });
    if (named.tenant === null) return fail("bad_event", TENANT_FIELD_MESSAGE, { index });
    if (!mayPublishType(who, decoded.value.type)) {
      deps.metrics.authRefusals.incLabel("forbidden");
      return fail(
        "forbidden",
        `type "${decoded.value.type}" is outside this credential's publish scopes`,
        { index },
      );
    }
    const group = byTenant.get(named.tenant) ?? [];
    group.push({ index, input: decoded.value });
    byTenant.set(named.tenant, group);
  }
  try {
    const accepted = new Array(raws.length);
    for (const [tenant, group] of byTenant) {
      const answers = await deps.hub.publish(tenant, group.map((entry) => entry.input));
      for (const [position, answer] of answers.entries()) {
        accepted[group[position]!.index] = answer;
      }
    }
    return json({ accepted }, 202);
  } catch (error) {
    return answerError(error, (code) => deps.metrics.errorsSent.incLabel(code));
  }
}
