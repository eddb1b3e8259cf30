/**
 * What `herald watch deploys|forge|teardown` shows: one pipeline run folded from its events (or
 * from a state snapshot after a resync) into steps with their status, duration and output, as
 * lines printed once and a live block with the running step. Pure: no I/O, no clock of its own.
 * @module
 */

import type { JsonObject } from "../events/json.ts";
import type { HubEvent } from "../client/mod.ts";
import { formatDuration, paint, spinnerFrame, type Style } from "./term.ts";

/** The pipelines the CLI watches, by event category. */
export type RunKind = "deploy" | "forge" | "teardown";

/** The state snapshot's name for each kind's run. */
export const RUN_SLOT: Record<RunKind, string> = {
  deploy: "deployment",
  forge: "forge",
  teardown: "teardown",
};

type StepStatus = "running" | "done" | "failed";

interface StepView {
  readonly name: string;
  status: StepStatus;
  startedAt: number;
  durationMs: number | null;
  output: string[];
}

/** How a step's `status` word reads: failed, done, or still running. */
export function stepStatus(word: string | undefined): StepStatus {
  if (word === undefined) return "running";
  if (/^(fail(ed|ure)?|error(ed)?|cancel+ed|abort(ed)?|timed?[-_ ]?out)$/i.test(word)) {
    return "failed";
  }
  if (
    /^(done|ok|success(ful)?|succeeded|complete(d)?|passed|finished|skipped|healthy|ready)$/i
      .test(word)
  ) {
    return "done";
  }
  return "running";
}

/** Where a run is. `waiting`: no run of this app has started since the watch began. */
export type RunPhase = "waiting" | "queued" | "running" | "completed" | "failed";

const str = (value: unknown): string | undefined => typeof value === "string" ? value : undefined;

/** Output lines kept per step for the live block. */
const LIVE_OUTPUT = 5;

/** One watched run of one app. */
export class RunView {
  readonly kind: RunKind;
  readonly appId: string;
  readonly #style: Style;
  phase: RunPhase = "waiting";
  #steps: StepView[] = [];
  #queuedAt = 0;
  #imageTag: string | undefined;
  #error: string | undefined;
  #printedHeader = false;

  constructor(kind: RunKind, appId: string, style: Style) {
    this.kind = kind;
    this.appId = appId;
    this.#style = style;
  }

  /** True once the run completed or failed. */
  get finished(): boolean {
    return this.phase === "completed" || this.phase === "failed";
  }

  /** The app an event of this kind is about (forge and teardown may name it in the payload). */
  static appOf(event: HubEvent): string | undefined {
    return event.appId ?? str(event.payload.app);
  }

  /** Folds one event of this kind and app in; returns the lines to print for good. */
  apply(event: HubEvent): string[] {
    if (this.finished) return [];
    const action = event.type.slice(event.type.indexOf(".") + 1);
    const at = Date.parse(event.timestamp);
    const payload = event.payload as JsonObject;
    const lines: string[] = [];
    if (action === "queued") {
      this.#start(at, str(payload.imageTag), lines);
      return lines;
    }
    if (this.phase === "waiting") this.#start(at, str(payload.imageTag), lines);
    if (action === "step") {
      const name = str(payload.step);
      if (name === undefined) return lines;
      this.phase = "running";
      let step = this.#steps.find((candidate) => candidate.name === name);
      if (step === undefined) {
        // A new step means the ones still running are over.
        for (const running of this.#steps.filter((s) => s.status === "running")) {
          this.#finishStep(running, "done", at, undefined, lines);
        }
        step = { name, status: "running", startedAt: at, durationMs: null, output: [] };
        this.#steps.push(step);
        if (!this.#style.tty) lines.push(`running   ${name}`);
      }
      const output = str(payload.output);
      if (output !== undefined) {
        for (const line of output.split("\n")) {
          step.output.push(line);
          if (!this.#style.tty) lines.push(`          ${name} | ${line}`);
        }
      }
      const status = stepStatus(str(payload.status));
      if (status !== "running" && step.status === "running") {
        this.#finishStep(step, status, at, payload.durationMs, lines);
      }
    } else if (action === "failed") {
      const name = str(payload.step);
      let step = (name === undefined ? undefined : this.#steps.find((s) => s.name === name)) ??
        this.#steps.findLast((s) => s.status === "running");
      if (step === undefined && name !== undefined) {
        step = { name, status: "running", startedAt: at, durationMs: null, output: [] };
        this.#steps.push(step);
      }
      if (step !== undefined && step.status === "running") {
        this.#finishStep(step, "failed", at, undefined, lines);
      }
      this.#error = str(payload.error) ?? "failed";
      this.#end("failed", this.#endAt(at, payload), step?.name, lines);
    } else if (action === "completed") {
      for (const running of this.#steps.filter((s) => s.status === "running")) {
        this.#finishStep(running, "done", at, undefined, lines);
      }
      this.#end("completed", this.#endAt(at, payload), undefined, lines);
    }
    return lines;
  }

  /** When the run ended: by the producer's `durationMs` when it reports one. */
  #endAt(at: number, payload: JsonObject): number {
    const reported = Number(payload.durationMs);
    return payload.durationMs !== undefined && Number.isFinite(reported)
      ? this.#queuedAt + reported
      : at;
  }

  /**
   * Takes the run from a state snapshot (`apps[].<slot>` or `app.<slot>`). Steps already shown
   * are not shown again. `resync` is false for the first snapshot: a run that had finished
   * before the watch began is not this watch's run.
   */
  adopt(run: JsonObject | null, resync: boolean): string[] {
    const lines: string[] = [];
    if (run === null || this.finished) return lines;
    const status = str(run.status);
    const queuedAt = Date.parse(str(run.queuedAt) ?? "");
    const runFinished = status === "completed" || status === "failed";
    if (runFinished && (!resync || this.phase === "waiting")) return lines;
    // Merged by step name: after a resync the hub may know only part of the run (a restarted
    // hub with a memory history saw only what came after it started).
    if (this.phase === "waiting") this.#start(queuedAt, str(run.imageTag), lines);
    const steps = Array.isArray(run.steps) ? run.steps as JsonObject[] : [];
    for (const raw of steps) {
      const name = str(raw.name);
      if (name === undefined) continue;
      let step = this.#steps.find((candidate) => candidate.name === name);
      const startedAt = Date.parse(str(raw.startedAt) ?? "");
      if (step === undefined) {
        step = { name, status: "running", startedAt, durationMs: null, output: [] };
        this.#steps.push(step);
        if (!this.#style.tty) lines.push(`running   ${name}`);
      }
      const stepState = stepStatus(str(raw.status));
      const isCurrent = name === str(run.step);
      const failedHere = status === "failed" && isCurrent;
      const finalStatus = failedHere ? "failed" : stepState;
      if (finalStatus !== "running" && step.status === "running") {
        this.#finishStep(step, finalStatus, startedAt, raw.durationMs, lines);
      }
    }
    if (status === "running" || status === "queued") this.phase = status;
    const finishedAt = Date.parse(str(run.finishedAt) ?? "");
    if (status === "failed") {
      this.#error = str(run.error) ?? "failed";
      this.#end("failed", finishedAt, str(run.step), lines);
    } else if (status === "completed") {
      this.#end("completed", finishedAt, undefined, lines);
    }
    return lines;
  }

  /** The block redrawn in place on a terminal: the running step, its last output lines. */
  live(now: number, notice?: string): string[] {
    const s = this.#style;
    const lines: string[] = [];
    if (this.phase === "waiting") {
      lines.push(
        `${paint(s, "cyan", spinnerFrame(now))} waiting for a ${this.kind} of ${this.appId}`,
      );
    } else if (!this.finished) {
      const running = this.#steps.filter((step) => step.status === "running");
      if (running.length === 0) {
        lines.push(`  ${paint(s, "cyan", spinnerFrame(now))} ${paint(s, "dim", this.phase)}`);
      }
      for (const step of running) {
        const elapsed = Number.isFinite(step.startedAt) ? formatDuration(now - step.startedAt) : "";
        lines.push(
          `  ${paint(s, "cyan", spinnerFrame(now))} ${step.name}  ${paint(s, "dim", elapsed)}`,
        );
        for (const line of step.output.slice(-LIVE_OUTPUT)) {
          lines.push(`    ${paint(s, "dim", `│ ${line}`)}`);
        }
      }
    }
    if (notice !== undefined) lines.push(paint(s, "yellow", `  ${notice}`));
    return lines;
  }

  #reset(): void {
    this.#steps = [];
    this.#error = undefined;
    this.#printedHeader = false;
  }

  #start(at: number, imageTag: string | undefined, lines: string[]): void {
    if (this.phase !== "waiting") this.#reset();
    this.phase = "queued";
    this.#queuedAt = at;
    this.#imageTag = imageTag ?? this.#imageTag;
    if (this.#printedHeader) return;
    this.#printedHeader = true;
    const tag = this.#imageTag === undefined ? "" : ` ${this.#imageTag}`;
    lines.push(
      this.#style.tty
        ? `${paint(this.#style, "bold", `● ${this.kind} ${this.appId}`)}${
          paint(this.#style, "dim", tag)
        }`
        : `queued    ${this.kind} ${this.appId}${tag}`,
    );
  }

  #finishStep(
    step: StepView,
    status: Exclude<StepStatus, "running">,
    at: number,
    reported: unknown,
    lines: string[],
  ): void {
    step.status = status;
    const number = Number(reported);
    step.durationMs = reported !== undefined && reported !== null && Number.isFinite(number)
      ? number
      : Number.isFinite(at - step.startedAt)
      ? Math.max(0, at - step.startedAt)
      : null;
    const duration = step.durationMs === null ? "" : formatDuration(step.durationMs);
    const s = this.#style;
    if (!s.tty) {
      lines.push(
        `${status === "done" ? "done  " : "failed"}    ${step.name}${duration && ` ${duration}`}`,
      );
      return;
    }
    const mark = status === "done" ? paint(s, "green", "✔") : paint(s, "red", "✖");
    lines.push(`  ${mark} ${step.name}  ${paint(s, "dim", duration)}`);
    const shown = status === "failed" ? step.output : step.output.slice(-LIVE_OUTPUT);
    for (const line of shown) lines.push(`    ${paint(s, "dim", `│ ${line}`)}`);
  }

  #end(phase: "completed" | "failed", at: number, stepName: string | undefined, lines: string[]) {
    this.phase = phase;
    const took = Number.isFinite(at - this.#queuedAt) ? formatDuration(at - this.#queuedAt) : "";
    const s = this.#style;
    const where = stepName === undefined ? "" : ` at ${stepName}`;
    if (!s.tty) {
      if (phase === "failed") lines.push(`error     ${this.#error}`);
      lines.push(`${phase.padEnd(9)} ${this.kind} ${this.appId}${where}${took && ` in ${took}`}`);
      return;
    }
    if (phase === "failed") {
      lines.push(`    ${paint(s, "red", `error: ${this.#error}`)}`);
      lines.push(
        paint(s, "red", `✖ ${this.kind} of ${this.appId} failed${where}`) +
          paint(s, "dim", took && ` after ${took}`),
      );
    } else {
      lines.push(
        paint(s, "green", `✔ ${this.kind} of ${this.appId} completed`) +
          paint(s, "dim", took && ` in ${took}`),
      );
    }
  }
}
