/**
 * Live state: every routed event folded, incrementally, into the current picture of each
 * tenant (apps with their runs, personas, clusters, resources, agents), so a client that opens
 * gets everything at once and then follows the live stream from the snapshot's cursor.
 *
 * Each event patches what it names and leaves the rest. Collections are bounded (least recently
 * updated entry evicted first) so producers cannot grow memory without limit.
 * @module
 */

import type { HeraldEvent } from "../events/envelope.ts";
import type { JsonObject, JsonValue } from "../events/json.ts";
import type { EventConsumer } from "../hub/hub.ts";

/** Bounds on what state keeps. */
export interface StateLimits {
  /** Entries per collection (apps, personas, clusters, resources, agents) per tenant. */
  readonly maxEntries: number;
  /** Steps kept per run (the newest are kept). */
  readonly maxSteps: number;
}

/** One step of a deploy, forge or teardown run. */
export interface StepState {
  name: string;
  status: string;
  startedAt: string;
  durationMs: number | null;
}

/** A deploy, forge or teardown run. */
export interface RunState {
  /** `queued`, `running`, `failed` or `completed`. */
  status: string;
  queuedAt: string;
  finishedAt: string | null;
  durationMs: number | null;
  error: string | null;
  /** The step the run is at (or failed at). */
  step: string | null;
  steps: StepState[];
  imageTag: string | null;
}

/** An app's current picture. */
export interface AppState {
  appId: string;
  status: string | null;
  health: string | null;
  imageTag: string | null;
  restarts: number;
  lastRestartAt: string | null;
  deployment: RunState | null;
  forge: RunState | null;
  teardown: RunState | null;
  lastRollback: { imageTag: string; at: string } | null;
  updatedAt: string;
  seq: string;
}

/** A persona, as operator CLIs expect it. */
export interface PersonaState {
  namespace: string;
  name: string;
  appName: string | null;
  type: string | null;
  tier: string | null;
  phase: string | null;
  health: string | null;
  validation: { passed: boolean; issueCount: number; at: string } | null;
}

/** A cluster, as operator CLIs expect it. */
export interface ClusterState {
  name: string;
  environment: string | null;
  phase: string | null;
  kubernetesVersion: string | null;
  platform: string | null;
  nodeCount: number;
  applicationCount: number;
  addons: JsonValue[];
}

/** A resource's last reported status (PENDING, DEPLOYING, HEALTHY, FAILED or another word). */
export interface ResourceState {
  resource: string;
  appId: string | null;
  namespace: string | null;
  status: string;
  since: string;
}

/** An agent's presence. */
export interface AgentState {
  agentId: string;
  status: "online" | "offline";
  since: string;
  info: JsonObject;
}

/** What a tenant's state holds. */
class TenantState {
  seq: string | null = null;
  readonly apps = new Map<string, AppState>();
  readonly personas = new Map<string, PersonaState>();
  readonly clusters = new Map<string, ClusterState>();
  readonly resources = new Map<string, ResourceState>();
  readonly agents = new Map<string, AgentState>();
}

const RUNS = { deploy: "deployment", forge: "forge", teardown: "teardown" } as const;

/**
 * Folds events into per-tenant state and answers snapshots. A consumer of the hub: fed every
 * routed event, it keeps a `resource.status` that repeats the resource's current status quiet
 * (stored, not broadcast to anyone, live or replayed).
 */
export class LiveState implements EventConsumer {
  readonly #limits: StateLimits;
  readonly #tenants = new Map<string, TenantState>();

  constructor(limits: StateLimits) {
    this.#limits = limits;
  }

  /**
   * Folds one event in. Returns false when the event changes nothing worth broadcasting: a
   * `resource.status` repeating the resource's current status.
   */
  apply(event: HeraldEvent): boolean {
    const tenant = this.#tenant(event.tenant);
    tenant.seq = event.seq;
    const dot = event.type.indexOf(".");
    const category = event.type.slice(0, dot);
    const action = event.type.slice(dot + 1);
    const payload = event.payload;
    switch (category) {
      case "resource":
        if (action === "status") return this.#resource(tenant, event);
        break;
      case "persona":
        this.#persona(tenant, action, event);
        break;
      case "validation":
        this.#validation(tenant, event);
        break;
      case "cluster":
        this.#cluster(tenant, action, payload);
        break;
      case "agent":
        this.#agent(tenant, action, event);
        break;
    }
    const appId = event.appId ??
      ((category === "forge" || category === "teardown") ? text(payload.app) : null);
    if (appId !== null) this.#app(tenant, appId, category, action, event);
    return true;
  }

  /** Cursor of the last event folded into a tenant's state; null before any. */
  seq(tenant: string): string | null {
    return this.#tenants.get(tenant)?.seq ?? null;
  }

  apps(tenant: string): AppState[] {
    return [...(this.#tenants.get(tenant)?.apps.values() ?? [])];
  }

  app(tenant: string, appId: string): AppState | null {
    return this.#tenants.get(tenant)?.apps.get(appId) ?? null;
  }

  /** Personas, optionally of one namespace, ordered by namespace then name. */
  personas(tenant: string, namespace?: string): PersonaState[] {
    return [...(this.#tenants.get(tenant)?.personas.values() ?? [])]
      .filter((persona) => namespace === undefined || persona.namespace === namespace)
      .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
  }

  /** A cluster by name, or the first one known (in name order) when no name is given. */
  cluster(tenant: string, name?: string): ClusterState | null {
    const clusters = this.#tenants.get(tenant)?.clusters;
    if (clusters === undefined) return null;
    if (name !== undefined) return clusters.get(name) ?? null;
    const names = [...clusters.keys()].sort();
    return names.length === 0 ? null : clusters.get(names[0]!)!;
  }

  /** Resources, optionally of one app. */
  resources(tenant: string, appId?: string): ResourceState[] {
    return [...(this.#tenants.get(tenant)?.resources.values() ?? [])]
      .filter((resource) => appId === undefined || resource.appId === appId);
  }

  /** A tenant's whole state (or one app's part of it), with the cursor it is consistent with. */
  snapshot(tenant: string, appId?: string): JsonObject {
    const state = this.#tenants.get(tenant) ?? new TenantState();
    const seq = state.seq;
    if (appId !== undefined) {
      return json({ seq, app: this.app(tenant, appId), resources: this.resources(tenant, appId) });
    }
    return json({
      seq,
      apps: [...state.apps.values()],
      personas: this.personas(tenant),
      clusters: [...state.clusters.values()],
      resources: [...state.resources.values()],
      agents: [...state.agents.values()],
    });
  }

  #tenant(name: string): TenantState {
    let tenant = this.#tenants.get(name);
    if (tenant === undefined) {
      tenant = new TenantState();
      this.#tenants.set(name, tenant);
    }
    return tenant;
  }

  /** Gets an entry and marks it most recently updated; creates it (evicting the oldest) if new. */
  #upsert<T>(map: Map<string, T>, key: string, create: () => T): T {
    let entry = map.get(key);
    if (entry !== undefined) {
      map.delete(key);
    } else {
      entry = create();
      if (map.size >= this.#limits.maxEntries) map.delete(map.keys().next().value!);
    }
    map.set(key, entry);
    return entry;
  }

  #resource(tenant: TenantState, event: HeraldEvent): boolean {
    const resource = text(event.payload.resource);
    const status = text(event.payload.status);
    if (resource === null || status === null) return true;
    const key = `${event.appId ?? ""}\u0000${event.namespace ?? ""}\u0000${resource}`;
    const current = tenant.resources.get(key);
    if (current?.status === status) return false;
    const entry = this.#upsert(tenant.resources, key, () => ({
      resource,
      appId: event.appId ?? null,
      namespace: event.namespace ?? null,
      status,
      since: event.timestamp,
    }));
    entry.status = status;
    entry.since = event.timestamp;
    return true;
  }

  #persona(tenant: TenantState, action: string, event: HeraldEvent): void {
    const payload = event.payload;
    const namespace = text(payload.namespace) ?? event.namespace ?? null;
    const name = text(payload.name);
    if (namespace === null || name === null) return;
    const key = `${namespace}/${name}`;
    if (action === "deleted") {
      tenant.personas.delete(key);
      return;
    }
    const persona = this.#upsert(tenant.personas, key, () => ({
      namespace,
      name,
      appName: event.appId ?? null,
      type: null,
      tier: null,
      phase: null,
      health: null,
      validation: null,
    }));
    for (const field of ["appName", "type", "tier", "phase", "health"] as const) {
      const value = text(payload[field]);
      if (value !== null) persona[field] = value;
    }
  }

  #validation(tenant: TenantState, event: HeraldEvent): void {
    const payload = event.payload;
    const persona = tenant.personas.get(`${text(payload.namespace)}/${text(payload.name)}`);
    if (persona === undefined) return;
    persona.validation = {
      passed: payload.passed === true,
      issueCount: typeof payload.issueCount === "number" ? payload.issueCount : 0,
      at: event.timestamp,
    };
  }

  #cluster(tenant: TenantState, action: string, payload: JsonObject): void {
    const name = text(payload.name);
    if (name === null) return;
    const cluster = this.#upsert(tenant.clusters, name, () => ({
      name,
      environment: null,
      phase: null,
      kubernetesVersion: null,
      platform: null,
      nodeCount: 0,
      applicationCount: 0,
      addons: [],
    }));
    for (const field of ["environment", "phase", "kubernetesVersion", "platform"] as const) {
      const value = text(payload[field]);
      if (value !== null) cluster[field] = value;
    }
    for (const field of ["nodeCount", "applicationCount"] as const) {
      const value = payload[field];
      if (typeof value === "number") cluster[field] = value;
    }
    if (Array.isArray(payload.addons)) cluster.addons = payload.addons;
    if (typeof payload.nodeCount !== "number") {
      if (action === "nodeAdded") cluster.nodeCount++;
      if (action === "nodeRemoved") cluster.nodeCount = Math.max(0, cluster.nodeCount - 1);
    }
  }

  #agent(tenant: TenantState, action: string, event: HeraldEvent): void {
    if (action !== "online" && action !== "offline") return;
    const payload = event.payload;
    const agentId = text(payload.agentId) ?? text(payload.id) ?? event.appId ?? null;
    if (agentId === null) return;
    const agent = this.#upsert(tenant.agents, agentId, () => ({
      agentId,
      status: action,
      since: event.timestamp,
      info: {},
    }));
    agent.status = action;
    agent.since = event.timestamp;
    agent.info = { ...agent.info, ...payload };
  }

  #app(
    tenant: TenantState,
    appId: string,
    category: string,
    action: string,
    event: HeraldEvent,
  ): void {
    const app = this.#upsert(tenant.apps, appId, () => ({
      appId,
      status: null,
      health: null,
      imageTag: null,
      restarts: 0,
      lastRestartAt: null,
      deployment: null,
      forge: null,
      teardown: null,
      lastRollback: null,
      updatedAt: event.timestamp,
      seq: event.seq,
    }));
    app.updatedAt = event.timestamp;
    app.seq = event.seq;
    const payload = event.payload;
    if (category === "deploy" && action === "rollback") {
      const imageTag = text(payload.imageTag) ?? "";
      app.imageTag = imageTag;
      app.lastRollback = { imageTag, at: event.timestamp };
    } else if (Object.hasOwn(RUNS, category)) {
      const slot = RUNS[category as keyof typeof RUNS];
      app[slot] = this.#run(app[slot], action, event);
      if (slot === "deployment" && action === "completed" && app[slot]?.imageTag) {
        app.imageTag = app[slot].imageTag;
      }
    } else if (category === "app" && action === "restarted") {
      app.restarts++;
      app.lastRestartAt = event.timestamp;
    } else if (category === "app" && action === "status") {
      app.status = text(payload.status) ?? app.status;
      app.health = text(payload.health) ?? app.health;
    } else if (category === "health" && action === "check") {
      app.health = payload.healthy === true ? "HEALTHY" : "UNHEALTHY";
    }
  }

  /** Folds a `<run>.queued|step|failed|completed` event into the current run. */
  #run(current: RunState | null, action: string, event: HeraldEvent): RunState {
    const payload = event.payload;
    const at = event.timestamp;
    let run = current;
    if (run === null || action === "queued" || (run.finishedAt !== null && action === "step")) {
      run = {
        status: "queued",
        queuedAt: at,
        finishedAt: null,
        durationMs: null,
        error: null,
        step: null,
        steps: [],
        imageTag: text(payload.imageTag),
      };
    }
    const stepName = text(payload.step);
    if (action === "step" && stepName !== null) {
      run.status = "running";
      run.step = stepName;
      let step = run.steps.find((candidate) => candidate.name === stepName);
      if (step === undefined) {
        step = { name: stepName, status: "running", startedAt: at, durationMs: null };
        run.steps.push(step);
        if (run.steps.length > this.#limits.maxSteps) run.steps.shift();
      }
      step.status = text(payload.status) ?? step.status;
      const duration = Number(payload.durationMs);
      if (payload.durationMs !== undefined && Number.isFinite(duration)) {
        step.durationMs = duration;
      } else if (step.status !== "running") {
        step.durationMs = Date.parse(at) - Date.parse(step.startedAt);
      }
    } else if (action === "failed" || action === "completed") {
      run.status = action;
      run.finishedAt = at;
      run.durationMs = Date.parse(at) - Date.parse(run.queuedAt);
      if (action === "failed") run.error = text(payload.error);
      if (stepName !== null) run.step = stepName;
    }
    return run;
  }
}

function text(value: JsonValue | undefined): string | null {
  return typeof value === "string" ? value : null;
}

/** State objects are JSON already; this only narrows their type for the wire. */
function json(value: unknown): JsonObject {
  return value as JsonObject;
}
