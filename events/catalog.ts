/**
 * The catalog of known event types and their lenient payload checks.
 *
 * The catalog documents what the seed systems emit; it does not fence: a well-formed
 * type outside it is accepted unless strict mode is on. A check only requires the named
 * fields with the right JSON types; extra fields always pass.
 * @module
 */

import { isJsonObject, type JsonValue } from "./json.ts";

/** JSON kinds a payload field can be checked against. */
export type FieldKind =
  | "string"
  | "number"
  | "boolean"
  | "object"
  | "array"
  /** A number, or a string holding a number (one real producer sends durations as strings). */
  | "numberish"
  /** An upper-case status word such as `HEALTHY`; the known values are listed, others pass. */
  | "status";

/** The payload contract of one event type. */
export interface PayloadSpec {
  /** What the event means, for the docs and for client authors. */
  readonly description: string;
  readonly required?: Readonly<Record<string, FieldKind>>;
  readonly optional?: Readonly<Record<string, FieldKind>>;
  /** The payload may be absent (it is then delivered as `{}`). Defaults to true. */
  readonly payloadOptional?: boolean;
}

/** Resource statuses the seed systems report; `status` fields accept other upper-case words too. */
export const RESOURCE_STATUSES = ["PENDING", "DEPLOYING", "HEALTHY", "FAILED"] as const;

const step = { step: "string" } as const;
const stepDetail = { status: "string", output: "string", durationMs: "numberish" } as const;

function pipeline(name: string, queued: PayloadSpec): Record<string, PayloadSpec> {
  return {
    [`${name}.queued`]: queued,
    [`${name}.step`]: {
      description: `A ${name} run progressed through a step.`,
      required: step,
      optional: stepDetail,
    },
    [`${name}.failed`]: {
      description: `A ${name} run failed at a step.`,
      required: { step: "string", error: "string" },
    },
    [`${name}.completed`]: { description: `A ${name} run finished successfully.` },
  };
}

/** Every catalogued event type, by name. */
export const CATALOG: Readonly<Record<string, PayloadSpec>> = {
  "deploy.queued": { description: "A deployment was queued (payload: the Deployment)." },
  "deploy.step": {
    description: "A deployment progressed through a step.",
    required: { step: "string", status: "string" },
    optional: { output: "string", durationMs: "numberish" },
  },
  "deploy.failed": {
    description: "A deployment failed (payload: the Deployment with `error`).",
    required: { error: "string" },
  },
  "deploy.completed": { description: "A deployment finished (payload: the Deployment)." },
  "deploy.rollback": {
    description: "An app was rolled back to an earlier image.",
    required: { imageTag: "string" },
  },
  ...pipeline("forge", {
    description: "A forge (build) run was queued.",
    required: { app: "string" },
  }),
  ...pipeline("teardown", {
    description: "A teardown run was queued.",
    required: { app: "string" },
  }),
  "app.restarted": { description: "An app was restarted; the payload may be absent." },
  "app.status": {
    description: "An app's status changed.",
    optional: { status: "string", health: "string" },
  },
  "health.check": {
    description: "A health checker's verdict on an app.",
    required: { healthy: "boolean" },
  },
  "persona.created": personaSpec("A persona was created."),
  "persona.updated": personaSpec("A persona changed."),
  "persona.deleted": personaSpec("A persona was deleted."),
  "cluster.updated": clusterSpec("A cluster's description changed."),
  "cluster.nodeAdded": clusterSpec("A node joined a cluster."),
  "cluster.nodeRemoved": clusterSpec("A node left a cluster."),
  "validation.result": {
    description: "The outcome of validating a persona or resource.",
    required: { namespace: "string", name: "string", passed: "boolean", issueCount: "number" },
    optional: { severity: "string", issues: "array" },
  },
  "reconcile.started": { description: "A reconcile loop began." },
  "reconcile.ended": { description: "A reconcile loop ended." },
  "resource.status": {
    description: `A resource reported its status (${
      RESOURCE_STATUSES.join(", ")
    }, or another upper-case word).`,
    required: { resource: "string", status: "status" },
  },
  "log.line": {
    description: "One line of log output.",
    required: { line: "string" },
    optional: { stream: "string" },
  },
  "session.created": sessionSpec("A streaming session was created."),
  "session.updated": sessionSpec("A streaming session changed."),
  "session.deleted": sessionSpec("A streaming session ended."),
  "session.state.changed": sessionSpec("A streaming session changed state."),
  "agent.online": { description: "An agent connected." },
  "agent.offline": { description: "An agent disconnected or went stale." },
  "agent.stale": { description: "An agent sent no heartbeat in time; agent.offline follows." },
  "agent.command.sent": { description: "A command was sent to an agent." },
  "agent.command.acked": { description: "An agent acknowledged a command." },
  "agent.command.completed": { description: "An agent completed a command." },
  "agent.command.failed": { description: "An agent reported a command failed." },
  "agent.command.timed_out": { description: "A command got no outcome in time." },
  "agent.command.agent_lost": {
    description: "The agent disconnected before a command finished.",
  },
};

/** Categories whose every type is catalogued, even names not listed (`session.*`). */
export const OPEN_CATEGORIES: ReadonlySet<string> = new Set(["session"]);

function personaSpec(description: string): PayloadSpec {
  return {
    description,
    required: { namespace: "string", name: "string" },
    optional: { phase: "string", health: "string" },
  };
}

/** StreamSpace's session events: the user and session ride in the envelope, for filtering. */
function sessionSpec(description: string): PayloadSpec {
  return {
    description: `${description} Published with the envelope's \`userId\` and \`sessionId\`.`,
  };
}

function clusterSpec(description: string): PayloadSpec {
  return {
    description: `${description} \`addons\`: names or objects with \`name\`, stored as published.`,
    required: { name: "string" },
    optional: { addons: "array" },
  };
}

/**
 * True when `type` is catalogued, exactly or through an open category.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isCatalogued } from "./catalog.ts";
 * assert.equal(isCatalogued("deploy.step"), true);
 * assert.equal(isCatalogued("billing.invoiced"), false);
 * ```
 */
export function isCatalogued(type: string): boolean {
  if (Object.hasOwn(CATALOG, type)) return true;
  const category = type.slice(0, type.indexOf("."));
  return OPEN_CATEGORIES.has(category);
}

function fieldMatches(kind: FieldKind, value: JsonValue): boolean {
  switch (kind) {
    case "string":
      return typeof value === "string";
    case "number":
      return typeof value === "number";
    case "boolean":
      return typeof value === "boolean";
    case "object":
      return isJsonObject(value);
    case "array":
      return Array.isArray(value);
    case "numberish":
      return typeof value === "number" ||
        (typeof value === "string" && value.trim() !== "" && Number.isFinite(Number(value)));
    case "status":
      return typeof value === "string" && /^[A-Z][A-Z0-9_]*$/.test(value);
  }
}

const KIND_NAMES: Record<FieldKind, string> = {
  string: "a string",
  number: "a number",
  boolean: "a boolean",
  object: "an object",
  array: "an array",
  numberish: "a number or a numeric string",
  status: "an upper-case status word",
};

/**
 * Checks a payload against the catalog entry for `type`.
 * Returns null when it passes (or the type is not catalogued), else the reason.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkPayload } from "./catalog.ts";
 * assert.equal(
 *   checkPayload("deploy.rollback", {}),
 *   "payload.imageTag is required and must be a string",
 * );
 * assert.equal(checkPayload("deploy.rollback", { imageTag: "v7" }), null);
 * ```
 */
export function checkPayload(type: string, payload: Record<string, JsonValue>): string | null {
  const spec = CATALOG[type];
  if (spec === undefined) return null;
  for (const [field, kind] of Object.entries(spec.required ?? {})) {
    const value = payload[field];
    if (value === undefined || !fieldMatches(kind, value)) {
      return `payload.${field} is required and must be ${KIND_NAMES[kind]}`;
    }
  }
  for (const [field, kind] of Object.entries(spec.optional ?? {})) {
    const value = payload[field];
    if (value !== undefined && value !== null && !fieldMatches(kind, value)) {
      return `payload.${field} must be ${KIND_NAMES[kind]} when present`;
    }
  }
  return null;
}
