/**
 * The demo producer (`deno task demo`): publishes what a small platform's systems would, at a
 * human pace, so that a new hub has something to show: deploys that pass or fail at different
 * steps with output lines, forge and teardown runs, health flapping, log lines, persona and
 * cluster changes, reconcile loops and resource statuses. Every event passes the catalog.
 *
 * `--fast` publishes one round of everything without waiting and exits (for tests); `--seed N`
 * makes the choices reproducible. `--url` and `--token` as for the CLI (default token: the hub's
 * `.herald/publish-token`).
 * @module
 */

import { parseArgs } from "node:util";
import { connect, type HeraldClient, type PublishInput } from "../client/mod.ts";
import type { JsonObject } from "../events/json.ts";

/** The demo's apps. */
export const DEMO_APPS = ["mail-agent", "billing-api", "web-frontend", "search-indexer"] as const;

const NAMESPACE = "production";

/** mulberry32: small, seeded, good enough for choosing demo flows. */
export function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Steps of a deploy, with the output lines each prints and its usual duration in ms. */
const DEPLOY_STEPS: readonly { name: string; ms: number; output: readonly string[] }[] = [
  { name: "pull", ms: 1200, output: ["Fetching origin/main", "HEAD is now at {sha}"] },
  {
    name: "build",
    ms: 4200,
    output: [
      "Step 1/6 : FROM denoland/deno:2.9.6",
      "Step 3/6 : RUN deno cache main.ts",
      'Step 6/6 : CMD ["run", "-A", "main.ts"]',
      "Successfully built {sha}",
    ],
  },
  {
    name: "test",
    ms: 3100,
    output: ["running 48 tests", "ok | 48 passed | 0 failed (2s)"],
  },
  {
    name: "push",
    ms: 1500,
    output: ["pushing registry.local/{app}:{tag}", "digest: sha256:{sha}"],
  },
  {
    name: "rollout",
    ms: 2600,
    output: [
      "deployment.apps/{app} configured",
      "Waiting for 3 pods",
      "3 of 3 updated replicas are available",
    ],
  },
  { name: "healthcheck", ms: 1400, output: ["GET /health 200 (12ms)"] },
];

const FAILURES: Record<string, string> = {
  build: "build failed: deno cache exited with 1 (cannot resolve npm:left-pad@9)",
  test: "tests failed: 3 of 48 (mailbox_test.ts)",
  push: "push failed: registry answered 503",
  rollout: "rollout failed: 1 of 3 pods in CrashLoopBackOff",
  healthcheck: "health check failed: GET /health 500 after 5 tries",
};

const FORGE_STEPS = ["scaffold", "generate", "validate", "commit"] as const;
const TEARDOWN_STEPS = ["drain", "delete-resources", "release-dns"] as const;

/** Publishes one event; the demo's single way out. */
export type Emit = (event: PublishInput) => Promise<void>;

/** Timing and randomness of one flow. */
interface Pace {
  readonly random: () => number;
  /** Waits `ms` scaled to the demo's speed (not at all with --fast). */
  readonly wait: (ms: number) => Promise<void>;
}

const pick = <T>(random: () => number, items: readonly T[]): T =>
  items[Math.floor(random() * items.length)]!;

const hex = (random: () => number, length: number) =>
  Array.from({ length }, () => Math.floor(random() * 16).toString(16)).join("");

/** Jitters a duration by ±30 %. */
const about = (random: () => number, ms: number) => Math.round(ms * (0.7 + random() * 0.6));

/**
 * A deploy of `appId`: queued, each step running with its output then done, and either completed
 * or failed at a step (`failAt`, or none).
 */
export async function deployFlow(emit: Emit, pace: Pace, appId: string, failAt?: string) {
  const { random, wait } = pace;
  const tag = `v1.${Math.floor(random() * 40)}.${Math.floor(random() * 10)}`;
  const id = `d-${hex(random, 8)}`;
  const sha = hex(random, 12);
  const fill = (line: string) =>
    line.replaceAll("{sha}", sha).replaceAll("{app}", appId).replaceAll("{tag}", tag);
  const deployment = { id, app: appId, imageTag: tag, namespace: NAMESPACE };
  await emit({ type: "deploy.queued", appId, namespace: NAMESPACE, payload: deployment });
  await wait(about(random, 800));
  let total = 0;
  for (const step of DEPLOY_STEPS) {
    const duration = about(random, step.ms);
    total += duration;
    await emit({
      type: "deploy.step",
      appId,
      namespace: NAMESPACE,
      payload: { step: step.name, status: "running" },
    });
    const lines = step.name === failAt ? step.output.slice(0, 1) : step.output;
    for (const line of lines) {
      await wait(duration / (lines.length + 1));
      await emit({
        type: "deploy.step",
        appId,
        namespace: NAMESPACE,
        payload: { step: step.name, status: "running", output: fill(line) },
      });
    }
    await wait(duration / (lines.length + 1));
    if (step.name === failAt) {
      const error = FAILURES[step.name] ?? `${step.name} failed`;
      await emit({
        type: "deploy.step",
        appId,
        namespace: NAMESPACE,
        payload: { step: step.name, status: "failed", durationMs: duration, output: error },
      });
      await emit({
        type: "deploy.failed",
        appId,
        namespace: NAMESPACE,
        payload: { ...deployment, step: step.name, error, durationMs: total },
      });
      return;
    }
    await emit({
      type: "deploy.step",
      appId,
      namespace: NAMESPACE,
      payload: { step: step.name, status: "done", durationMs: duration },
    });
  }
  await emit({
    type: "deploy.completed",
    appId,
    namespace: NAMESPACE,
    payload: { ...deployment, durationMs: total },
  });
  await emit({
    type: "app.status",
    appId,
    namespace: NAMESPACE,
    payload: { status: "RUNNING", health: "HEALTHY" },
  });
}

/** A forge or teardown run (its app named in the payload, as the seed systems do). */
export async function pipelineFlow(
  emit: Emit,
  pace: Pace,
  kind: "forge" | "teardown",
  app: string,
  failAt?: string,
) {
  const { random, wait } = pace;
  await emit({
    type: `${kind}.queued`,
    payload: { app, requestedBy: pick(random, ["ana", "kofi", "li"]) },
  });
  for (const step of kind === "forge" ? FORGE_STEPS : TEARDOWN_STEPS) {
    const duration = about(random, 1500);
    await emit({ type: `${kind}.step`, payload: { app, step, status: "running" } });
    await wait(duration);
    if (step === failAt) {
      await emit({
        type: `${kind}.failed`,
        payload: { app, step, error: `${step}: permission denied on namespace ${NAMESPACE}` },
      });
      return;
    }
    await emit({
      type: `${kind}.step`,
      payload: { app, step, status: "done", durationMs: duration, output: `${step} ok` },
    });
  }
  await emit({ type: `${kind}.completed`, payload: { app } });
}

/** Health flapping, log lines, resources: the background noise of one app for a while. */
export async function appNoise(emit: Emit, pace: Pace, appId: string, rounds: number) {
  const { random, wait } = pace;
  for (let round = 0; round < rounds; round++) {
    const healthy = random() > 0.25;
    await emit({
      type: "health.check",
      appId,
      namespace: NAMESPACE,
      payload: { healthy, latencyMs: Math.round(5 + random() * 80) },
    });
    if (!healthy) {
      await emit({
        type: "app.status",
        appId,
        namespace: NAMESPACE,
        payload: { status: "DEGRADED", health: "UNHEALTHY" },
      });
    }
    const stream = random() > 0.85 ? "stderr" : "stdout";
    const line = stream === "stderr"
      ? `WARN upstream timeout after ${Math.round(500 + random() * 2000)}ms`
      : `${pick(random, ["GET", "POST"])} /${
        pick(random, ["api/messages", "health", "api/send"])
      } 200 ${Math.round(random() * 90)}ms`;
    await emit({ type: "log.line", appId, namespace: NAMESPACE, payload: { line, stream } });
    await emit({
      type: "resource.status",
      appId,
      namespace: NAMESPACE,
      payload: {
        resource: `${appId}-db`,
        status: pick(random, ["PENDING", "DEPLOYING", "HEALTHY", "HEALTHY"]),
      },
    });
    await wait(about(random, 2500));
  }
}

/** Personas, a cluster and a reconcile loop: the operator side. */
export async function platformFlow(emit: Emit, pace: Pace, rounds: number) {
  const { random, wait } = pace;
  await emit({
    type: "cluster.updated",
    payload: {
      name: "prod-eu",
      environment: "production",
      phase: "Ready",
      kubernetesVersion: "1.31.2",
      platform: "k3s",
      nodeCount: 3,
    },
  });
  for (let round = 0; round < rounds; round++) {
    const name = pick(random, ["support-bot", "triage", "summarizer"]);
    await emit({ type: "reconcile.started", payload: { loop: "personas", round } });
    await emit({
      type: round === 0 ? "persona.created" : "persona.updated",
      appId: "mail-agent",
      namespace: NAMESPACE,
      payload: {
        namespace: NAMESPACE,
        name,
        phase: pick(random, ["Pending", "Ready"]),
        health: "HEALTHY",
        tier: "standard",
      },
    });
    const issueCount = random() > 0.7 ? 1 + Math.floor(random() * 3) : 0;
    await emit({
      type: "validation.result",
      namespace: NAMESPACE,
      payload: {
        namespace: NAMESPACE,
        name,
        passed: issueCount === 0,
        issueCount,
        severity: issueCount === 0 ? "none" : "warning",
      },
    });
    if (random() > 0.6) {
      await emit({
        type: "cluster.nodeAdded",
        payload: { name: "prod-eu", node: `node-${round + 4}` },
      });
    }
    await emit({
      type: "reconcile.ended",
      payload: { loop: "personas", round, durationMs: about(random, 900) },
    });
    await wait(about(random, 6000));
  }
}

/** Options of {@linkcode runDemo}. */
export interface DemoOptions {
  readonly seed: number;
  /** One round of everything, no waiting, then return. */
  readonly fast: boolean;
  /** Lines for the person watching (what started, what ended). */
  readonly log: (line: string) => void;
  /** Resolves when the demo should stop (not in fast mode). */
  readonly stop?: Promise<void>;
}

/** Runs the demo against `emit` until `stop` (or, fast, after one round). */
export async function runDemo(emit: Emit, options: DemoOptions): Promise<void> {
  const flowPace = (n: number): Pace => ({
    random: seeded(options.seed * 1000 + n),
    wait: options.fast
      ? () => Promise.resolve()
      : (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  });
  if (options.fast) {
    const [first, second, third, fourth] = DEMO_APPS;
    await Promise.all([
      deployFlow(emit, flowPace(1), first),
      deployFlow(emit, flowPace(2), second, "test"),
      deployFlow(emit, flowPace(3), third, "rollout"),
      pipelineFlow(emit, flowPace(4), "forge", fourth),
      pipelineFlow(emit, flowPace(5), "teardown", "old-reports", "release-dns"),
      appNoise(emit, flowPace(6), first, 3),
      appNoise(emit, flowPace(7), second, 3),
      platformFlow(emit, flowPace(8), 2),
    ]);
    options.log("demo: one round published");
    return;
  }
  let stopped = false;
  options.stop?.then(() => (stopped = true));
  const running = new Set<string>();
  const background = [
    ...DEMO_APPS.map((app, i) => appNoise(emit, flowPace(100 + i), app, Infinity)),
    platformFlow(emit, flowPace(200), Infinity),
  ];
  background.forEach((flow) => flow.catch(() => {}));
  const choose = seeded(options.seed);
  const sleep = (ms: number) =>
    Promise.race([new Promise((resolve) => setTimeout(resolve, ms)), options.stop]);
  for (let n = 0; !stopped; n++) {
    // Every third flow is a deploy of mail-agent, the first at once: `herald watch deploys --app
    // mail-agent` has something to show within seconds.
    const mailAgent = n % 3 === 0;
    const app = mailAgent ? "mail-agent" : pick(choose, DEMO_APPS);
    const roll = choose();
    if (!running.has(app)) {
      running.add(app);
      const failAt = roll < 0.35 ? pick(choose, Object.keys(FAILURES)) : undefined;
      const kind = mailAgent || roll < 0.75 ? "deploy" : roll < 0.9 ? "forge" : "teardown";
      options.log(`demo: ${kind} of ${app}${failAt ? ` (will fail at ${failAt})` : ""}`);
      const flow = kind === "deploy"
        ? deployFlow(emit, flowPace(n + 1000), app, failAt)
        : pipelineFlow(
          emit,
          flowPace(n + 1000),
          kind,
          app,
          failAt === "build" ? "generate" : undefined,
        );
      flow.catch((error) => options.log(`demo: ${error.message}`)).finally(() =>
        running.delete(app)
      );
    }
    await sleep(about(choose, 9000));
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      url: { type: "string" },
      token: { type: "string" },
      seed: { type: "string" },
      fast: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(`Usage: deno task demo [--fast] [--seed N] [--url URL] [--token TOKEN]

Publishes realistic platform events to a hub until interrupted: deploys (some failing), forge
and teardown runs, health, logs, personas, cluster, reconcile loops.
  --fast      one round of everything, no waiting, then exit
  --seed N    reproducible choices (default: random)
  --url URL   the hub (default: $HERALD_URL, else http://localhost:8800)
  --token T   the publish token (default: $HERALD_TOKEN, else .herald/publish-token)`);
    Deno.exit(0);
  }
  let token = values.token ?? Deno.env.get("HERALD_TOKEN");
  try {
    token ??= (await Deno.readTextFile(".herald/publish-token")).trim();
  } catch {
    console.error(
      "demo: no publish token (--token, HERALD_TOKEN, or run from the hub's directory)",
    );
    Deno.exit(2);
  }
  const url = values.url ?? Deno.env.get("HERALD_URL") ?? "http://localhost:8800";
  const client: HeraldClient = connect(url, { token, requestTimeoutMs: 10_000 });
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  Deno.addSignalListener("SIGINT", () => stop());
  const seed = values.seed === undefined ? Math.floor(Math.random() * 1e9) : Number(values.seed);
  let published = 0;
  const emit: Emit = async (event) => {
    await client.publish({ ...event, payload: event.payload as JsonObject });
    published++;
  };
  console.log(`demo: publishing to ${url} (seed ${seed}); Ctrl-C stops`);
  try {
    await runDemo(emit, {
      seed,
      fast: values.fast === true,
      log: (line) => console.log(line),
      stop: stopped,
    });
  } catch (error) {
    console.error(`demo: ${(error as Error).message}`);
    Deno.exit(1);
  }
  console.log(`demo: ${published} events published`);
  await client.close();
  Deno.exit(0);
}
