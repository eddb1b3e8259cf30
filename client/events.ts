/**
 * Typed events for client code: the payloads of the catalogued event types (`events/catalog.ts`)
 * as TypeScript types, and a type guard that narrows an event to one of them.
 * @module
 */

import type { JsonObject, JsonValue } from "../events/json.ts";

/**
 * A number or a numeric string (one real producer sends durations as strings).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Numberish } from "./events.ts";
 * const durations: Numberish[] = [1200, "1200"];
 * assert.deepEqual(durations.map(Number), [1200, 1200]);
 * ```
 */
export type Numberish = number | string;

/**
 * A deploy, forge or teardown step report.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { StepPayload } from "./events.ts";
 * const step: StepPayload = { step: "build", status: "done", durationMs: "2100" };
 * assert.equal(Number(step.durationMs), 2100);
 * ```
 */
export interface StepPayload {
  readonly step: string;
  readonly status?: string;
  readonly output?: string;
  readonly durationMs?: Numberish;
}

/**
 * A persona event's payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { PersonaPayload } from "./events.ts";
 * const persona: PersonaPayload = { namespace: "production", name: "triage", phase: "Ready" };
 * assert.equal(persona.phase, "Ready");
 * ```
 */
export interface PersonaPayload {
  readonly namespace: string;
  readonly name: string;
  readonly phase?: string;
  readonly health?: string;
}

/**
 * The payload of every catalogued event type, as the catalog checks it (required fields are
 * required here, optional ones optional; extra fields are allowed, as on the wire).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { EventPayloads } from "./events.ts";
 * const failed: EventPayloads["forge.failed"] = { step: "generate", error: "denied" };
 * assert.equal(failed.error, "denied");
 * ```
 */
export interface EventPayloads {
  "deploy.queued": JsonObject;
  "deploy.step": StepPayload & { readonly status: string };
  "deploy.failed": { readonly error: string };
  "deploy.completed": JsonObject;
  "deploy.rollback": { readonly imageTag: string };
  "forge.queued": { readonly app: string };
  "forge.step": StepPayload;
  "forge.failed": { readonly step: string; readonly error: string };
  "forge.completed": JsonObject;
  "teardown.queued": { readonly app: string };
  "teardown.step": StepPayload;
  "teardown.failed": { readonly step: string; readonly error: string };
  "teardown.completed": JsonObject;
  "app.restarted": JsonObject;
  "app.status": { readonly status?: string; readonly health?: string };
  "health.check": { readonly healthy: boolean };
  "persona.created": PersonaPayload;
  "persona.updated": PersonaPayload;
  "persona.deleted": PersonaPayload;
  "cluster.updated": { readonly name: string };
  "cluster.nodeAdded": { readonly name: string };
  "cluster.nodeRemoved": { readonly name: string };
  "validation.result": {
    readonly namespace: string;
    readonly name: string;
    readonly passed: boolean;
    readonly issueCount: number;
    readonly severity?: string;
    readonly issues?: JsonValue[];
  };
  "reconcile.started": JsonObject;
  "reconcile.ended": JsonObject;
  "resource.status": { readonly resource: string; readonly status: string };
  "log.line": { readonly line: string; readonly stream?: string };
  "session.created": JsonObject;
  "session.updated": JsonObject;
  "session.deleted": JsonObject;
  "session.state.changed": JsonObject;
  "agent.online": JsonObject;
  "agent.offline": JsonObject;
}

/**
 * A catalogued event type.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { KnownEventType } from "./events.ts";
 * import { CATALOG } from "../events/catalog.ts";
 * const known: KnownEventType[] = ["deploy.step", "log.line", "agent.online"];
 * for (const type of known) assert.ok(type in CATALOG);
 * ```
 */
export type KnownEventType = keyof EventPayloads;

/**
 * An event as the hub delivers it. For a catalogued `T` the payload has that type's fields
 * (plus any others the producer sent).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { HubEvent } from "./events.ts";
 * const event: HubEvent<"log.line"> = {
 *   type: "log.line",
 *   payload: { line: "listening on :8080" },
 *   id: "e-1",
 *   seq: "abc-1",
 *   timestamp: "2026-12-03T06:00:00.000Z",
 * };
 * assert.equal(event.payload.line, "listening on :8080");
 * ```
 */
export interface HubEvent<T extends string = string> {
  readonly type: T;
  readonly appId?: string;
  readonly namespace?: string;
  readonly payload: T extends KnownEventType ? EventPayloads[T] & JsonObject : JsonObject;
  readonly id: string;
  /** Opaque cursor: hand it back as `since`, never parse it. */
  readonly seq: string;
  readonly timestamp: string;
}

/**
 * True when `event` is of `type`; narrows its payload to that type's.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type HubEvent, isEventOf } from "./events.ts";
 * const event: HubEvent = {
 *   type: "deploy.step",
 *   appId: "web",
 *   payload: { step: "build", status: "running" },
 *   id: "e-1",
 *   seq: "abc-1",
 *   timestamp: "2026-12-03T06:00:00.000Z",
 * };
 * assert.ok(isEventOf(event, "deploy.step"));
 * if (isEventOf(event, "deploy.step")) assert.equal(event.payload.step, "build");
 * assert.equal(isEventOf(event, "deploy.failed"), false);
 * ```
 */
export function isEventOf<T extends KnownEventType>(
  event: HubEvent,
  type: T,
): event is HubEvent<T> {
  return event.type === type;
}
