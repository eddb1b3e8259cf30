import assert from "node:assert/strict";
import type { HeraldEvent } from "../events/envelope.ts";
import type { JsonObject } from "../events/json.ts";
import { LiveState } from "./state.ts";

let n = 0;
function event(type: string, payload: JsonObject, extra: Partial<HeraldEvent> = {}): HeraldEvent {
  n++;
  return {
    tenant: "t",
    type,
    payload,
    id: `i${n}`,
    seq: `e-${n}`,
    timestamp: new Date(Date.UTC(2024, 0, 1, 0, 0, n)).toISOString(),
    ...extra,
  };
}

Deno.test("state folds a deployment with its steps, durations and outcome", () => {
  const state = new LiveState({ maxEntries: 100, maxSteps: 10 });
  const web = { appId: "web" };
  state.apply(event("deploy.queued", { imageTag: "v2" }, web));
  state.apply(event("deploy.step", { step: "build", status: "running" }, web));
  state.apply(event("deploy.step", { step: "build", status: "done", durationMs: "1500" }, web));
  state.apply(event("deploy.step", { step: "rollout", status: "running" }, web));
  state.apply(event("deploy.step", { step: "rollout", status: "done" }, web));
  state.apply(event("deploy.completed", {}, web));
  state.apply(event("app.restarted", {}, web));
  state.apply(event("app.status", { status: "RUNNING" }, web));
  state.apply(event("health.check", { healthy: true }, web));
  state.apply(event("forge.queued", { app: "web" }));
  state.apply(event("forge.failed", { app: "web", step: "compile", error: "oops" }));
  const app = state.app("t", "web")!;
  assert.equal(app.deployment?.status, "completed");
  assert.equal(app.deployment?.durationMs, 5000);
  assert.deepEqual(
    app.deployment?.steps.map((step) => [step.name, step.status, step.durationMs]),
    [["build", "done", 1500], ["rollout", "done", 1000]],
  );
  assert.equal(app.imageTag, "v2");
  assert.equal(app.restarts, 1);
  assert.equal(app.status, "RUNNING");
  assert.equal(app.health, "HEALTHY");
  assert.deepEqual([app.forge?.status, app.forge?.step, app.forge?.error], [
    "failed",
    "compile",
    "oops",
  ]);
  assert.equal(state.seq("t"), `e-${n}`);
});

Deno.test("state: personas, clusters and agents patch what they name", () => {
  const state = new LiveState({ maxEntries: 100, maxSteps: 10 });
  state.apply(event("persona.created", { namespace: "a", name: "p1", type: "web", tier: "gold" }));
  state.apply(event("persona.updated", { namespace: "a", name: "p1", phase: "Ready" }));
  state.apply(event("persona.created", { namespace: "b", name: "p2" }));
  state.apply(event("persona.created", { namespace: "a", name: "gone" }));
  state.apply(event("persona.deleted", { namespace: "a", name: "gone" }));
  assert.deepEqual(state.personas("t", "a").map((p) => [p.name, p.type, p.tier, p.phase]), [
    ["p1", "web", "gold", "Ready"],
  ]);
  state.apply(event("cluster.updated", { name: "prod", platform: "k8s", nodeCount: 3 }));
  state.apply(event("cluster.nodeAdded", { name: "prod" }));
  state.apply(event("cluster.updated", { name: "dev" }));
  assert.equal(state.cluster("t", "prod")?.nodeCount, 4);
  assert.equal(state.cluster("t", "prod")?.platform, "k8s");
  assert.equal(state.cluster("t")?.name, "dev", "first cluster by name when none is given");
  state.apply(event("agent.online", { agentId: "k1", kind: "kubernetes" }));
  state.apply(event("agent.offline", { agentId: "k1" }));
  const snapshot = state.snapshot("t") as { agents: { status: string }[] };
  assert.equal(snapshot.agents[0]?.status, "offline");
});

Deno.test("state: a repeated resource status is not worth broadcasting", () => {
  const state = new LiveState({ maxEntries: 100, maxSteps: 10 });
  const status = (value: string, resource = "pod-1") =>
    state.apply(event("resource.status", { resource, status: value }, { appId: "web" }));
  assert.equal(status("PENDING"), true);
  assert.equal(status("PENDING"), false);
  assert.equal(status("PENDING", "pod-2"), true);
  assert.equal(status("HEALTHY"), true);
  assert.equal(status("HEALTHY"), false);
  assert.deepEqual(state.resources("t", "web").map((r) => [r.resource, r.status]).sort(), [
    ["pod-1", "HEALTHY"],
    ["pod-2", "PENDING"],
  ]);
});

Deno.test("state is bounded: the least recently updated entry goes first", () => {
  const state = new LiveState({ maxEntries: 2, maxSteps: 10 });
  for (const appId of ["a", "b", "a", "c"]) state.apply(event("app.restarted", {}, { appId }));
  assert.deepEqual(state.apps("t").map((app) => app.appId).sort(), ["a", "c"]);
});
