/**
 * The benchmark scenarios of issues 5 and 16, each run against the Deno floor, Herald, Node `ws`
 * and socket.io in one invocation: every scenario runs its rounds back to back, and within a
 * round every server in turn, the order rotated between rounds so that drift on a shared machine
 * hits all of them alike. The sizes of a full, a quick and the CI smoke run.
 * @module
 */

import {
  type Layout,
  layoutMissing,
  type Load,
  type LoadResult,
  LoadSession,
  runLoad,
  type Shape,
  type Target,
  TARGETS,
} from "./_load.ts";

/** A fan-out cell: this many clients, all subscribed to everything, at this publish rate. */
export interface FanoutSize {
  readonly clients: number;
  readonly rate: number;
}

/** Sizes of one invocation. */
export interface Sizes {
  readonly name: "full" | "quick" | "smoke";
  /** Rounds of every side-by-side scenario (medians and spread over them). */
  readonly rounds: number;
  /** Fan-out cells (the chart's x axis); each runs every payload size on one connected set. */
  readonly fanout: readonly FanoutSize[];
  readonly payloads: readonly number[];
  readonly seconds: number;
  readonly warmupSeconds: number;
  /** The knee: publish rate stepped up on `clients` until p99 passes `p99Ms` or one is lost. */
  readonly knee: {
    readonly clients: number;
    readonly startRate: number;
    readonly factor: number;
    readonly maxRate: number;
    readonly stepSeconds: number;
    readonly p99Ms: number;
  };
  readonly targeted: {
    readonly big: { readonly clients: number; readonly apps: number };
    readonly small: { readonly clients: number; readonly apps: number };
    readonly rate: number;
  };
  /** Idle clients holding `topics` exact-topic subscriptions each. */
  readonly idleTopics: { readonly clients: number; readonly topics: number };
  readonly slow: {
    readonly clients: number;
    readonly stalledShare: number;
    readonly payloadBytes: number;
    readonly rate: number;
    readonly seconds: number;
  };
  readonly perProcess: number;
  readonly settleMs: number;
}

/** The issue's matrix: fan-out at 1,000 and 5,000 clients, 3 rounds. */
export const FULL: Sizes = {
  name: "full",
  rounds: 3,
  // The same 50,000 deliveries per second at both sizes.
  fanout: [{ clients: 1000, rate: 50 }, { clients: 5000, rate: 10 }],
  payloads: [64, 2048],
  seconds: 4,
  warmupSeconds: 1,
  knee: { clients: 1000, startRate: 20, factor: 1.25, maxRate: 2000, stepSeconds: 1.5, p99Ms: 50 },
  targeted: { big: { clients: 10_000, apps: 1000 }, small: { clients: 100, apps: 10 }, rate: 500 },
  idleTopics: { clients: 1000, topics: 100 },
  slow: { clients: 200, stalledShare: 0.1, payloadBytes: 8192, rate: 100, seconds: 12 },
  perProcess: 2500,
  settleMs: 2000,
};

/** The same scenarios with one round, for trying a change (not for the committed report). */
export const QUICK: Sizes = { ...FULL, name: "quick", rounds: 1 };

/** The CI smoke run: one small round of every scenario and server; no timing is judged. */
export const SMOKE: Sizes = {
  name: "smoke",
  rounds: 1,
  fanout: [{ clients: 20, rate: 20 }, { clients: 50, rate: 10 }],
  payloads: [64, 2048],
  seconds: 1,
  warmupSeconds: 0.5,
  knee: { clients: 20, startRate: 20, factor: 2, maxRate: 40, stepSeconds: 0.5, p99Ms: 50 },
  targeted: { big: { clients: 200, apps: 20 }, small: { clients: 20, apps: 2 }, rate: 50 },
  idleTopics: { clients: 20, topics: 100 },
  slow: { clients: 40, stalledShare: 0.1, payloadBytes: 8192, rate: 50, seconds: 2 },
  perProcess: 500,
  settleMs: 500,
};

/** Payload sizes of the fan-out scenario. */
export const SMALL_PAYLOAD = 64;
export const LARGE_PAYLOAD = 2048;

/** One value per round for every server (a server whose run failed has fewer). */
export type Rounds<T> = Record<Target, T[]>;

/** Memory of one server with its clients connected and idle. */
export interface IdleRun {
  readonly clients: number;
  readonly baselineRss: number;
  readonly idleRss: number;
}

/** One step of the knee. */
export interface KneeStep {
  readonly rate: number;
  /** Publishes per second the publisher achieved. */
  readonly achieved: number;
  readonly p99: number;
  readonly lost: number;
  readonly ok: boolean;
}

/** The knee of one server in one round: the highest step that passed. */
export interface KneeRun {
  /** Publish rate of the last step that passed (0: not even the first). */
  readonly knee: number;
  readonly steps: readonly KneeStep[];
  /** The last step passed too: the knee is at least the top of the range. */
  readonly topReached: boolean;
}

/** Everything one invocation measured. */
export interface Results {
  readonly sizes: Sizes;
  readonly fanout: readonly {
    readonly clients: number;
    readonly rate: number;
    readonly payloadBytes: number;
    readonly runs: Rounds<LoadResult>;
  }[];
  readonly knee: Rounds<KneeRun>;
  readonly targeted: { readonly big: Rounds<LoadResult>; readonly small: Rounds<LoadResult> };
  /** Idle memory at the first fan-out size, at the big targeted size and with many topics. */
  readonly idle: readonly { readonly label: string; readonly runs: Rounds<IdleRun> }[];
  readonly slow: {
    readonly baseline: Partial<Record<Target, LoadResult>>;
    readonly stalled: Partial<Record<Target, LoadResult>>;
    readonly stalledCount: number;
  };
  /** Herald's headline fan-out (64 B) through each scale-out layout, next to one node. */
  readonly scaleOut: {
    readonly single: LoadResult | null;
    readonly runs: { readonly layout: Layout; readonly result: LoadResult }[];
    readonly skipped: string[];
  };
  /** Runs that threw (a server that did not start, a receiver that could not connect). */
  readonly errors: string[];
}

/** The servers in round `round`'s order: the first round's order rotated by the round. */
export function roundOrder(round: number): Target[] {
  const shift = round % TARGETS.length;
  return [...TARGETS.slice(shift), ...TARGETS.slice(0, shift)];
}

function emptyRounds<T>(): Rounds<T> {
  return { floor: [], herald: [], ws: [], socketio: [] };
}

const describe = (r: LoadResult) =>
  `${r.delivered} deliveries, lost ${r.lost}, cpu ${r.cpuSeconds.toFixed(2)} s, ` +
  `p50/p99 ${r.p50.toFixed(2)}/${r.p99.toFixed(2)} ms` +
  (r.duplicated > 0 ? `, DUPLICATED ${r.duplicated}` : "") +
  (r.failed > 0 ? `, FAILED ${r.failed}` : "");

/** Runs every scenario. */
export async function runScenarios(sizes: Sizes, log: (line: string) => void): Promise<Results> {
  const errors: string[] = [];
  const base = { stalled: 0, apps: 0, perProcess: sizes.perProcess, settleMs: sizes.settleMs };
  const load = (rate: number, payloadBytes: number): Load => ({
    rate,
    payloadBytes,
    seconds: sizes.seconds,
    warmupSeconds: sizes.warmupSeconds,
  });

  /** Opens a session per round and server (rotated), hands it to `use`, and closes it. */
  const rounds = async (
    label: string,
    shape: Shape,
    use: (session: LoadSession, target: Target, tag: string) => Promise<void>,
    publish = true,
  ) => {
    for (let round = 0; round < sizes.rounds; round++) {
      for (const target of roundOrder(round)) {
        const tag = `  ${label} ${target}${
          sizes.rounds > 1 ? ` (${round + 1}/${sizes.rounds})` : ""
        }`;
        const started = performance.now();
        let session: LoadSession | null = null;
        try {
          session = await LoadSession.open(target, shape, publish);
          await use(session, target, tag);
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          errors.push(`${label} (${target}): ${message.split("\n")[0]}`);
          log(`${tag}: FAILED: ${message}`);
        } finally {
          await session?.close();
        }
        log(`${tag}: done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      }
    }
  };

  log("1. Fan-out and the knee");
  const fanout = sizes.fanout.flatMap(({ clients, rate }) =>
    sizes.payloads.map((payloadBytes) => ({
      clients,
      rate,
      payloadBytes,
      runs: emptyRounds<LoadResult>(),
    }))
  );
  const knee = emptyRounds<KneeRun>();
  const idleFanout = emptyRounds<IdleRun>();
  for (const size of sizes.fanout) {
    const withKnee = size.clients === sizes.knee.clients;
    await rounds(
      `${size.clients} clients`,
      { ...base, clients: size.clients },
      async (s, t, tag) => {
        idleFanout[t].push({
          clients: size.clients,
          baselineRss: s.baselineRss,
          idleRss: s.idleRss,
        });
        for (const cell of fanout.filter((cell) => cell.clients === size.clients)) {
          const result = await s.measure(load(size.rate, cell.payloadBytes));
          cell.runs[t].push(result);
          log(`${tag}, ${cell.payloadBytes} B at ${size.rate}/s: ${describe(result)}`);
        }
        if (withKnee) {
          const run = await findKnee(s, sizes);
          knee[t].push(run);
          log(`${tag}, knee: ${run.knee}/s (${run.steps.map(formatStep).join(", ")})`);
        }
      },
    );
  }

  log("2. Targeted routing and idle memory at its size");
  const targeted = { big: emptyRounds<LoadResult>(), small: emptyRounds<LoadResult>() };
  const idleBig = emptyRounds<IdleRun>();
  for (const which of ["small", "big"] as const) {
    const shape = sizes.targeted[which];
    await rounds(
      `${shape.clients} connections over ${shape.apps} apps`,
      { ...base, ...shape },
      async (s, t, tag) => {
        if (which === "big") {
          idleBig[t].push({
            clients: shape.clients,
            baselineRss: s.baselineRss,
            idleRss: s.idleRss,
          });
        }
        const result = await s.measure(load(sizes.targeted.rate, SMALL_PAYLOAD));
        targeted[which][t].push(result);
        log(`${tag}: ${describe(result)}`);
      },
    );
  }

  log("3. Idle memory with subscriptions");
  const { clients: idleClients, topics } = sizes.idleTopics;
  const idleTopics = emptyRounds<IdleRun>();
  await rounds(
    `${idleClients} idle clients with ${topics} topics each`,
    { ...base, clients: idleClients, topics },
    (s, t, tag) => {
      idleTopics[t].push({ clients: idleClients, baselineRss: s.baselineRss, idleRss: s.idleRss });
      log(`${tag}: ${((s.idleRss - s.baselineRss) / idleClients / 1024).toFixed(1)} KiB each`);
      return Promise.resolve();
    },
    false,
  );

  log("4. Slow consumers (one round)");
  const slowBase = {
    ...base,
    clients: sizes.slow.clients,
    rate: sizes.slow.rate,
    payloadBytes: sizes.slow.payloadBytes,
    // The same length with and without stalls: the history fills the same way in both.
    seconds: sizes.slow.seconds,
    warmupSeconds: sizes.warmupSeconds,
  };
  const stalledCount = Math.round(sizes.slow.clients * sizes.slow.stalledShare);
  const slow = { baseline: {}, stalled: {}, stalledCount } as Results["slow"];
  for (const target of roundOrder(0)) {
    for (const kind of ["baseline", "stalled"] as const) {
      const options = kind === "baseline" ? slowBase : {
        ...slowBase,
        clients: sizes.slow.clients - stalledCount,
        stalled: stalledCount,
      };
      try {
        const result = await runLoad(target, options);
        slow[kind][target] = result;
        log(`  ${kind} ${target}: ${describe(result)}, peak RSS ${mib(result.peakRss)} MiB`);
      } catch (error) {
        errors.push(`slow consumers ${kind} (${target}): ${String(error).split("\n")[0]}`);
        log(`  ${kind} ${target}: FAILED: ${error}`);
      }
    }
  }

  log("5. Scale-out (Herald)");
  const headline = sizes.fanout[0]!;
  const scaleOut = {
    single: null as LoadResult | null,
    runs: [] as { layout: Layout; result: LoadResult }[],
    skipped: [] as string[],
  };
  for (const layout of ["single", "parallel", "redis", "redis3"] as const) {
    const missing = await layoutMissing(layout);
    if (missing !== null) {
      scaleOut.skipped.push(`${layout}: ${missing}`);
      log(`  ${layout} skipped: ${missing}`);
      continue;
    }
    try {
      const result = await runLoad("herald", {
        ...base,
        ...load(headline.rate, SMALL_PAYLOAD),
        clients: headline.clients,
        layout,
      });
      if (layout === "single") scaleOut.single = result;
      else scaleOut.runs.push({ layout, result });
      log(`  ${headline.clients} clients, 64 B, ${layout}: ${describe(result)}`);
    } catch (error) {
      errors.push(`scale-out ${layout}: ${String(error).split("\n")[0]}`);
      log(`  ${layout}: FAILED: ${error}`);
    }
  }
  return {
    sizes,
    fanout,
    knee,
    targeted,
    idle: [
      { label: `${count(headline.clients)} clients`, runs: idleFanout },
      { label: `${count(sizes.targeted.big.clients)} clients`, runs: idleBig },
      { label: `${count(idleClients)} clients, ${topics} topics each`, runs: idleTopics },
    ],
    slow,
    scaleOut,
    errors,
  };
}

const count = (value: number) => value.toLocaleString("en-US");
const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
const formatStep = (step: KneeStep) =>
  `${step.rate}/s p99 ${step.p99.toFixed(1)} ms${step.lost > 0 ? ` lost ${step.lost}` : ""}${
    step.ok ? "" : " FAIL"
  }`;

/**
 * Steps the publish rate up on a connected session, from `startRate` by `factor`, until a step
 * loses a delivery, has a p99 at or over `p99Ms`, or the publisher cannot reach the rate (the
 * server answers too slowly); the knee is the last rate that passed. A step that fails is run
 * once more before it ends the search: on a shared machine one pause elsewhere (a collection in
 * the receivers, another process) can push one short step's p99 over the line, and a server
 * that cannot sustain the rate fails the second time too. Deliveries later than a second after
 * the step count as lost: they would be over the limit anyway.
 */
export async function findKnee(session: LoadSession, sizes: Sizes): Promise<KneeRun> {
  const { startRate, factor, maxRate, stepSeconds, p99Ms } = sizes.knee;
  const steps: KneeStep[] = [];
  const step = async (rate: number): Promise<KneeStep> => {
    const result = await session.measure({
      rate,
      seconds: stepSeconds,
      warmupSeconds: 0,
      payloadBytes: SMALL_PAYLOAD,
      drainMs: 1000,
    });
    const ok = result.lost === 0 && result.failed === 0 && result.p99 < p99Ms &&
      result.achievedRate >= rate * 0.95;
    return { rate, achieved: result.achievedRate, p99: result.p99, lost: result.lost, ok };
  };
  let knee = 0;
  for (let rate = startRate; rate <= maxRate; rate = Math.round(rate * factor)) {
    let outcome = await step(rate);
    steps.push(outcome);
    if (!outcome.ok) {
      outcome = await step(rate);
      steps.push(outcome);
    }
    if (!outcome.ok) return { knee, steps, topReached: false };
    knee = rate;
  }
  return { knee, steps, topReached: true };
}
