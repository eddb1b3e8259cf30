/**
 * The dashboard's model: the state snapshot and the live stream folded into what the views show
 * (apps, pipeline runs with their steps and output, the event list, personas, clusters,
 * reconcile loops, resources, agents). Pure: no DOM, no timers, no I/O, so it is tested in Deno
 * and the browser renders it once per animation frame, whatever the event rate.
 *
 * Every collection is bounded by {@linkcode MODEL_LIMITS}: the page's memory and DOM stay flat
 * under a stream of any length.
 * @module
 */

import type { HubEvent } from "../client/mod.ts";
import type { JsonObject, JsonValue } from "../events/json.ts";
import { parseTopic, topicMatches } from "../events/topic.ts";
import { stepStatus } from "../cli/run_view.ts";

/** The dashboard's bounds (documented in the README's dashboard section). */
export const MODEL_LIMITS = {
  /** Rows the event list keeps (the oldest leave first). */
  eventRows: 500,
  /** Events held while the event list is paused; past it the oldest are dropped and counted. */
  pausedEvents: 2000,
  /** Finished runs kept in the recent-runs list. */
  recentRuns: 50,
  /** Output lines kept per step (the newest). */
  outputLines: 40,
  /** Reconcile loops kept. */
  reconcileLoops: 100,
  /** Entries kept per collection (apps, personas, clusters, resources, agents). */
  entries: 5000,
} as const;

/** The pipelines the dashboard follows, by event category. */
export type RunKind = "deploy" | "forge" | "teardown";
const RUN_KINDS: readonly RunKind[] = ["deploy", "forge", "teardown"];
const SLOTS: Record<RunKind, string> = {
  deploy: "deployment",
  forge: "forge",
  teardown: "teardown",
};

/** One step of a run. */
export interface Step {
  readonly name: string;
  status: "running" | "done" | "failed";
  /** Epoch ms of the step's first event. */
  startedAt: number;
  durationMs: number | null;
  output: string[];
  error: string | null;
}

/** A deploy, forge or teardown run. */
export interface Run {
  readonly kind: RunKind;
  readonly appId: string;
  status: "queued" | "running" | "completed" | "failed";
  queuedAt: number;
  finishedAt: number | null;
  error: string | null;
  imageTag: string | null;
  steps: Step[];
}

/** An app's row. */
export interface AppRow {
  readonly appId: string;
  status: string | null;
  health: string | null;
  imageTag: string | null;
  /** The last deployment, summarised. */
  deployment: { status: string; at: number; imageTag: string | null } | null;
}

/** A reconcile loop from `reconcile.started` / `reconcile.ended`. */
export interface ReconcileLoop {
  readonly key: string;
  readonly name: string;
  startedAt: number;
  endedAt: number | null;
  /** As the producer reported it, else the time between the two events. */
  durationMs: number | null;
  result: string | null;
}

/** Filters of the event list: a topic pattern and exact app and namespace. */
export interface EventFilter {
  readonly type: string;
  readonly appId: string;
  readonly namespace: string;
}

const text = (value: JsonValue | undefined): string | null =>
  typeof value === "string" ? value : null;
const obj = (value: JsonValue | undefined): JsonObject =>
  value !== null && typeof value === "object" && !Array.isArray(value) ? value : {};
const time = (iso: string | null | undefined): number => {
  const ms = iso ? Date.parse(iso) : NaN;
  return Number.isFinite(ms) ? ms : 0;
};

/** The app a pipeline event is about (forge and teardown may name it in the payload). */
function appOf(event: HubEvent): string | null {
  return event.appId ?? text(event.payload.app);
}

/**
 * Folds one event of a run's kind into `run` (null: no run yet) and returns the run it belongs
 * to: a `queued` event, or a step after a finished run, starts a new one. The same fold serves
 * the live view and the replay of a past run from history, so both show one timeline.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { foldRun } from "./model.ts";
 * const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
 * const ev = (type: string, payload: Record<string, string>, s: number) =>
 *   ({ type, appId: "web", payload, id: `${s}`, seq: `e-${s}`, timestamp: at(s) });
 * let run = foldRun(null, ev("deploy.queued", {}, 0))!;
 * run = foldRun(run, ev("deploy.step", { step: "build", status: "running", output: "ok" }, 1))!;
 * run = foldRun(run, ev("deploy.step", { step: "build", status: "done" }, 4))!;
 * run = foldRun(run, ev("deploy.failed", { step: "test", error: "2 tests failed" }, 6))!;
 * assert.equal(run.status, "failed");
 * assert.deepEqual(run.steps.map((s) => [s.name, s.status, s.durationMs]), [
 *   ["build", "done", 3000],
 *   ["test", "failed", 0],
 * ]);
 * assert.equal(run.steps[1]!.error, "2 tests failed");
 * ```
 */
export function foldRun(run: Run | null, event: HubEvent): Run | null {
  const dot = event.type.indexOf(".");
  const kind = event.type.slice(0, dot) as RunKind;
  const action = event.type.slice(dot + 1);
  const appId = appOf(event);
  if (!RUN_KINDS.includes(kind) || appId === null || action === "rollback") return run;
  const at = time(event.timestamp);
  const payload = event.payload;
  let current = run;
  if (
    current === null || action === "queued" || (current.finishedAt !== null && action === "step")
  ) {
    current = {
      kind,
      appId,
      status: "queued",
      queuedAt: at,
      finishedAt: null,
      error: null,
      imageTag: text(payload.imageTag),
      steps: [],
    };
  }
  current.imageTag = text(payload.imageTag) ?? current.imageTag;
  const name = text(payload.step);
  if (action === "step" && name !== null) {
    current.status = "running";
    const step = stepOf(current, name, at);
    const output = text(payload.output);
    if (output !== null) {
      step.output.push(...output.split("\n"));
      if (step.output.length > MODEL_LIMITS.outputLines) {
        step.output.splice(0, step.output.length - MODEL_LIMITS.outputLines);
      }
    }
    const status = stepStatus(text(payload.status) ?? undefined);
    if (status !== "running") finishStep(step, status, at, payload.durationMs);
  } else if (action === "failed" || action === "completed") {
    current.status = action;
    current.finishedAt = at;
    current.error = text(payload.error);
    for (const step of current.steps) {
      if (step.status === "running") finishStep(step, action === "failed" ? "failed" : "done", at);
    }
    if (action === "failed") {
      const failed = name === null ? current.steps.at(-1) : stepOf(current, name, at);
      if (failed !== undefined) {
        finishStep(failed, "failed", at, failed.durationMs ?? undefined);
        failed.error = current.error;
      }
    }
  }
  return current;
}

function stepOf(run: Run, name: string, at: number): Step {
  let step = run.steps.find((candidate) => candidate.name === name);
  if (step === undefined) {
    step = { name, status: "running", startedAt: at, durationMs: null, output: [], error: null };
    run.steps.push(step);
  }
  return step;
}

function finishStep(step: Step, status: Step["status"], at: number, reported?: JsonValue): void {
  step.status = status;
  const ms = Number(reported);
  step.durationMs = reported !== undefined && reported !== null && Number.isFinite(ms)
    ? ms
    : Math.max(0, at - step.startedAt);
}

/**
 * A run from the state snapshot (`apps[].deployment`, `.forge`, `.teardown`): its steps and
 * durations, without output lines (state does not keep them).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runFromState } from "./model.ts";
 * const run = runFromState("deploy", "web", {
 *   status: "completed", queuedAt: "2026-01-01T00:00:00Z", finishedAt: "2026-01-01T00:00:05Z",
 *   error: null, imageTag: "v2",
 *   steps: [{ name: "build", status: "done", startedAt: "2026-01-01T00:00:01Z", durationMs: 3000 }],
 * });
 * assert.equal(run.status, "completed");
 * assert.equal(run.steps[0]!.durationMs, 3000);
 * ```
 */
export function runFromState(kind: RunKind, appId: string, raw: JsonObject): Run {
  const status = text(raw.status);
  return {
    kind,
    appId,
    status: status === "running" || status === "completed" || status === "failed"
      ? status
      : "queued",
    queuedAt: time(text(raw.queuedAt)),
    finishedAt: raw.finishedAt ? time(text(raw.finishedAt)) : null,
    error: text(raw.error),
    imageTag: text(raw.imageTag),
    steps: (Array.isArray(raw.steps) ? raw.steps : []).map((value) => {
      const step = obj(value);
      const durationMs = typeof step.durationMs === "number" ? step.durationMs : null;
      const verdict = stepStatus(text(step.status) ?? undefined);
      return {
        name: text(step.name) ?? "?",
        status: verdict === "running" && durationMs !== null ? "done" : verdict,
        startedAt: time(text(step.startedAt)),
        durationMs,
        output: [],
        error: null,
      };
    }),
  };
}

/**
 * Splits a history page of one app's pipeline events into its runs, oldest first: each run is
 * folded with {@linkcode foldRun}, exactly as the live view folds it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runsFromHistory } from "./model.ts";
 * const ev = (type: string, s: number, payload = {}) =>
 *   ({ type, appId: "web", payload, id: `${s}`, seq: `e-${s}`, timestamp: new Date(s * 1000).toISOString() });
 * const runs = runsFromHistory([
 *   ev("deploy.queued", 1), ev("deploy.completed", 2), ev("deploy.queued", 3),
 *   ev("deploy.step", 4, { step: "pull", status: "running" }),
 * ]);
 * assert.deepEqual(runs.map((run) => run.status), ["completed", "running"]);
 * ```
 */
export function runsFromHistory(events: readonly HubEvent[]): Run[] {
  const runs: Run[] = [];
  let current: Run | null = null;
  for (const event of events) {
    const next = foldRun(current, event);
    if (next !== null && next !== current) runs.push(next);
    current = next;
  }
  return runs;
}

/** Whether an event passes the event list's filters (empty fields match everything). */
function passes(filter: EventFilter, event: HubEvent): boolean {
  if (filter.appId !== "" && event.appId !== filter.appId) return false;
  if (filter.namespace !== "" && event.namespace !== filter.namespace) return false;
  if (filter.type === "" || filter.type === "*") return true;
  const pattern = parseTopic(filter.type);
  return pattern !== null && topicMatches(pattern, event.type);
}

/** Keeps at most `max` entries in insertion order, evicting the oldest. */
function bounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > max) map.delete(map.keys().next().value!);
}

/**
 * What the dashboard shows, folded from the snapshot and the live stream. `version` grows on
 * every change, so a view re-renders only when something changed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DashboardModel } from "./model.ts";
 * const model = new DashboardModel();
 * model.load({ seq: "e-1", apps: [{ appId: "web", status: "running", health: "HEALTHY" }] });
 * const ev = (type: string, s: number, payload = {}) =>
 *   ({ type, appId: "web", payload, id: `${s}`, seq: `e-${s}`, timestamp: new Date(s * 1000).toISOString() });
 * model.apply(ev("deploy.queued", 2));
 * model.pause();
 * model.apply(ev("deploy.step", 3, { step: "build", status: "running" }));
 * assert.equal(model.events.length, 1); // paused: held, not shown
 * assert.equal(model.liveRuns()[0]!.steps[0]!.name, "build"); // other views stay live
 * model.resume();
 * assert.deepEqual(model.visibleEvents({ type: "deploy.*", appId: "", namespace: "" }).map((e) => e.seq), ["e-3", "e-2"]);
 * assert.equal(model.apps.get("web")!.deployment!.status, "running");
 * ```
 */
export class DashboardModel {
  version = 0;
  seq: string | null = null;
  readonly apps = new Map<string, AppRow>();
  /** The current run per `kind:appId`. */
  readonly runs = new Map<string, Run>();
  /** Finished runs, newest last. */
  readonly recent: Run[] = [];
  /** The event list, oldest first. */
  readonly events: HubEvent[] = [];
  readonly #eventIds = new Set<string>();
  paused = false;
  readonly #held: HubEvent[] = [];
  /** Events the paused list dropped, and those the client or hub reported dropped. */
  dropped = 0;
  personas = new Map<string, JsonObject>();
  clusters = new Map<string, JsonObject>();
  resources = new Map<string, JsonObject>();
  agents = new Map<string, JsonObject>();
  readonly reconcile = new Map<string, ReconcileLoop>();
  /** Events folded since the page opened (the event-rate figure). */
  received = 0;

  /** Replaces the picture with a state snapshot (at start, and when a resume was impossible). */
  load(state: JsonObject): void {
    this.seq = text(state.seq);
    this.apps.clear();
    this.runs.clear();
    for (const value of Array.isArray(state.apps) ? state.apps : []) {
      const raw = obj(value);
      const appId = text(raw.appId);
      if (appId === null) continue;
      const row = this.#app(appId);
      row.status = text(raw.status);
      row.health = text(raw.health);
      row.imageTag = text(raw.imageTag);
      for (const kind of RUN_KINDS) {
        const slot = obj(raw[SLOTS[kind]]);
        if (Object.keys(slot).length === 0) continue;
        const run = runFromState(kind, appId, slot);
        this.runs.set(`${kind}:${appId}`, run);
        if (kind === "deploy") this.#summarise(row, run);
      }
    }
    const keyed = (field: string, key: (entry: JsonObject) => string | null) => {
      const map = new Map<string, JsonObject>();
      for (const value of Array.isArray(state[field]) ? state[field] : []) {
        const entry = obj(value);
        const name = key(entry);
        if (name !== null) map.set(name, entry);
      }
      return map;
    };
    this.personas = keyed("personas", (p) => `${text(p.namespace)}/${text(p.name)}`);
    this.clusters = keyed("clusters", (c) => text(c.name));
    this.resources = keyed("resources", (r) => `${text(r.appId) ?? ""}/${text(r.resource)}`);
    this.agents = keyed("agents", (a) => text(a.agentId));
    this.version++;
  }

  /** Folds one live event in. */
  apply(event: HubEvent): void {
    this.seq = event.seq;
    this.received++;
    this.version++;
    if (this.paused) {
      this.#held.push(event);
      if (this.#held.length > MODEL_LIMITS.pausedEvents) {
        this.#held.shift();
        this.dropped++;
      }
    } else {
      this.#list(event);
    }
    const dot = event.type.indexOf(".");
    const category = event.type.slice(0, dot);
    const action = event.type.slice(dot + 1);
    const payload = event.payload;
    const at = time(event.timestamp);
    if ((RUN_KINDS as readonly string[]).includes(category)) {
      const appId = appOf(event);
      if (appId === null) return;
      const row = this.#app(appId);
      if (action === "rollback") {
        row.imageTag = text(payload.imageTag) ?? row.imageTag;
        return;
      }
      const key = `${category}:${appId}`;
      const before = this.runs.get(key) ?? null;
      const run = foldRun(before, event);
      if (run === null) return;
      if (before !== null && run !== before && before.finishedAt === null) this.#retire(before);
      this.runs.set(key, run);
      if (run.finishedAt !== null && (action === "completed" || action === "failed")) {
        this.#retire(run);
      }
      if (category === "deploy") {
        this.#summarise(row, run);
        if (action === "completed" && run.imageTag !== null) row.imageTag = run.imageTag;
      }
      return;
    }
    switch (category) {
      case "app":
        if (action === "status" && event.appId !== undefined) {
          const row = this.#app(event.appId);
          row.status = text(payload.status) ?? row.status;
          row.health = text(payload.health) ?? row.health;
        }
        return;
      case "health":
        if (event.appId !== undefined) {
          this.#app(event.appId).health = payload.healthy === true ? "HEALTHY" : "UNHEALTHY";
        }
        return;
      case "persona": {
        const namespace = text(payload.namespace) ?? event.namespace ?? null;
        const key = `${namespace}/${text(payload.name)}`;
        if (action === "deleted") this.personas.delete(key);
        else {
          const merged = { ...this.personas.get(key), ...payload, namespace };
          bounded(this.personas, key, merged, MODEL_LIMITS.entries);
        }
        return;
      }
      case "validation": {
        const key = `${text(payload.namespace)}/${text(payload.name)}`;
        const persona = this.personas.get(key);
        if (persona !== undefined) {
          this.personas.set(key, {
            ...persona,
            validation: { passed: payload.passed === true, issueCount: payload.issueCount ?? 0 },
          });
        }
        return;
      }
      case "cluster": {
        const name = text(payload.name);
        if (name === null) return;
        const current = this.clusters.get(name) ?? {};
        const merged: JsonObject = { ...current, ...payload };
        if (typeof payload.nodeCount !== "number") {
          const nodes = typeof current.nodeCount === "number" ? current.nodeCount : 0;
          if (action === "nodeAdded") merged.nodeCount = nodes + 1;
          if (action === "nodeRemoved") merged.nodeCount = Math.max(0, nodes - 1);
        }
        bounded(this.clusters, name, merged, MODEL_LIMITS.entries);
        return;
      }
      case "resource": {
        const resource = text(payload.resource);
        if (resource === null) return;
        bounded(this.resources, `${event.appId ?? ""}/${resource}`, {
          resource,
          appId: event.appId ?? null,
          namespace: event.namespace ?? null,
          status: text(payload.status) ?? "?",
          since: event.timestamp,
        }, MODEL_LIMITS.entries);
        return;
      }
      case "reconcile": {
        const name = text(payload.name) ?? text(payload.loop) ?? event.appId ?? "reconcile";
        const key = `${event.namespace ?? ""}/${name}`;
        const loop = this.reconcile.get(key) ??
          { key, name, startedAt: at, endedAt: null, durationMs: null, result: null };
        if (action === "started") {
          loop.startedAt = at;
          loop.endedAt = null;
          loop.durationMs = null;
          loop.result = null;
        } else if (action === "ended") {
          loop.endedAt = at;
          loop.durationMs = typeof payload.durationMs === "number" ? payload.durationMs : null;
          loop.result = text(payload.result) ?? text(payload.status) ?? "ended";
        }
        bounded(this.reconcile, key, loop, MODEL_LIMITS.reconcileLoops);
        return;
      }
      case "agent": {
        const agentId = text(payload.agentId) ?? text(payload.id) ?? event.appId ?? null;
        if (agentId === null || !["online", "offline", "stale"].includes(action)) return;
        bounded(this.agents, agentId, {
          agentId,
          status: action,
          since: event.timestamp,
          info: { ...obj(this.agents.get(agentId)?.info), ...payload },
        }, MODEL_LIMITS.entries);
        return;
      }
    }
  }

  /** Counts events dropped before they reached the page (client buffer or hub overflow). */
  noteDropped(count: number): void {
    this.dropped += count;
    this.version++;
  }

  /** Holds new events out of the event list (other views stay live). */
  pause(): void {
    this.paused = true;
    this.version++;
  }

  /** Shows what arrived while paused, then follows again. */
  resume(): void {
    this.paused = false;
    for (const event of this.#held.splice(0)) this.#list(event);
    this.version++;
  }

  /** Events held while paused. */
  get held(): number {
    return this.#held.length;
  }

  /** The event list filtered, newest first, at most `limit` rows. */
  visibleEvents(filter: EventFilter, limit: number = MODEL_LIMITS.eventRows): HubEvent[] {
    const rows: HubEvent[] = [];
    for (let i = this.events.length - 1; i >= 0 && rows.length < limit; i--) {
      const event = this.events[i]!;
      if (passes(filter, event)) rows.push(event);
    }
    return rows;
  }

  /** Runs in progress, newest first. */
  liveRuns(): Run[] {
    return [...this.runs.values()].filter((run) => run.finishedAt === null)
      .sort((a, b) => b.queuedAt - a.queuedAt);
  }

  #list(event: HubEvent): void {
    if (this.#eventIds.has(event.id)) return;
    this.#eventIds.add(event.id);
    this.events.push(event);
    if (this.events.length > MODEL_LIMITS.eventRows) {
      this.#eventIds.delete(this.events.shift()!.id);
    }
  }

  #retire(run: Run): void {
    if (!this.recent.includes(run)) this.recent.push(run);
    if (this.recent.length > MODEL_LIMITS.recentRuns) this.recent.shift();
  }

  #summarise(row: AppRow, run: Run): void {
    row.deployment = {
      status: run.status,
      at: run.finishedAt ?? run.queuedAt,
      imageTag: run.imageTag,
    };
  }

  #app(appId: string): AppRow {
    let row = this.apps.get(appId);
    if (row === undefined) {
      row = { appId, status: null, health: null, imageTag: null, deployment: null };
      bounded(this.apps, appId, row, MODEL_LIMITS.entries);
    }
    return row;
  }
}
