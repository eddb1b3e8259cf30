import assert from "node:assert/strict";
import type { HubEvent } from "../client/mod.ts";
import { RunView, stepStatus } from "./run_view.ts";

const plain = { tty: false, color: false, columns: 80 };
let n = 0;
const event = (type: string, payload: Record<string, unknown>, at: number): HubEvent => ({
  type,
  appId: "web",
  payload: payload as HubEvent["payload"],
  id: `e${++n}`,
  seq: `x-${n}`,
  timestamp: new Date(at).toISOString(),
});

Deno.test("step status words: failed, done, or still running", () => {
  assert.deepEqual(
    ["failed", "Error", "done", "succeeded", "passed", "building", undefined].map(stepStatus),
    ["failed", "failed", "done", "done", "done", "running", "running"],
  );
});

Deno.test("a new step finishes the one still running, timed by the events", () => {
  const view = new RunView("deploy", "web", plain);
  const lines = [
    event("deploy.queued", {}, 0),
    event("deploy.step", { step: "build", status: "building" }, 1000),
    event("deploy.step", { step: "test", status: "running" }, 3500),
    event("deploy.completed", {}, 4000),
  ].flatMap((e) => view.apply(e));
  assert.deepEqual(lines, [
    "queued    deploy web",
    "running   build",
    "done      build 2.5s",
    "running   test",
    "done      test 500ms",
    "completed deploy web in 4.0s",
  ]);
  assert.equal(view.phase, "completed");
});

Deno.test("a resync snapshot merges by step name: nothing shown twice", () => {
  const view = new RunView("deploy", "web", plain);
  const first = [
    event("deploy.queued", { imageTag: "v1" }, 0),
    event("deploy.step", { step: "build", status: "done", durationMs: 100 }, 100),
    event("deploy.step", { step: "test", status: "running" }, 200),
  ].flatMap((e) => view.apply(e));
  assert.equal(first.filter((line) => line.includes("build")).length, 2);
  const after = view.adopt({
    status: "completed",
    queuedAt: new Date(0).toISOString(),
    finishedAt: new Date(900).toISOString(),
    step: "test",
    steps: [
      { name: "build", status: "done", startedAt: new Date(0).toISOString(), durationMs: 100 },
      { name: "test", status: "done", startedAt: new Date(200).toISOString(), durationMs: 600 },
    ],
  }, true);
  assert.deepEqual(after, ["done      test 600ms", "completed deploy web in 900ms"]);
});

Deno.test("the first snapshot ignores a run that finished before the watch began", () => {
  const view = new RunView("forge", "web", plain);
  assert.deepEqual(view.adopt({ status: "failed", steps: [], error: "old" }, false), []);
  assert.equal(view.phase, "waiting");
});
