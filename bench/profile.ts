/**
 * Profiles the server during one benchmark load (`deno task bench:profile`): runs the load
 * against a server started with `--cpu-prof`, then prints where its CPU went (self time by
 * function and by file) from the V8 profile, which it keeps for Chrome DevTools.
 *
 * Usage: `deno task bench:profile [LOAD] [herald|floor|ws|socketio]`, LOAD one of fanout,
 * fanout-2k, fanout-5000, fanout-5000-2k, targeted, targeted-small. The Node peers are profiled
 * with Node's own `--cpu-prof`, which writes the same format.
 * @module
 */

import { type LoadOptions, runLoad, type Target } from "./_load.ts";
import { FULL, LARGE_PAYLOAD, SMALL_PAYLOAD } from "./scenarios.ts";

const base = {
  stalled: 0,
  apps: 0,
  seconds: 10,
  warmupSeconds: 1,
  perProcess: FULL.perProcess,
  settleMs: 1000,
  rate: FULL.fanout[0]!.rate,
  payloadBytes: SMALL_PAYLOAD,
  clients: FULL.fanout[0]!.clients,
};

const LOADS: Record<string, LoadOptions> = {
  fanout: base,
  "fanout-2k": { ...base, payloadBytes: LARGE_PAYLOAD },
  "fanout-5000": { ...base, ...FULL.fanout[1]! },
  "fanout-5000-2k": { ...base, ...FULL.fanout[1]!, payloadBytes: LARGE_PAYLOAD },
  targeted: { ...base, ...FULL.targeted.big, rate: FULL.targeted.rate },
  "targeted-small": { ...base, ...FULL.targeted.small, rate: FULL.targeted.rate },
};

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
}

function where(node: ProfileNode): { fn: string; file: string } {
  const { functionName, url, lineNumber } = node.callFrame;
  const root = new URL("../", import.meta.url).href;
  const file = url.startsWith(root) ? url.slice(root.length) : url || "(native)";
  return { fn: functionName || "(anonymous)", file: url ? `${file}:${lineNumber + 1}` : file };
}

/** Prints the top functions and files by self time. */
export function summarize(profile: CpuProfile, top = 30): string {
  const total = profile.samples.length;
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    if (hits === 0) continue;
    const { fn, file } = where(node);
    const key = `${fn}  ${file}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + hits);
    const group = file.replace(/:\d+$/, "");
    byFile.set(group, (byFile.get(group) ?? 0) + hits);
  }
  // Inclusive time of the project's own functions: self time of their whole subtree.
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const inclusive = new Map<string, number>();
  const walk = (node: ProfileNode, open: Set<string>): number => {
    let hits = node.hitCount ?? 0;
    const { fn, file } = where(node);
    const key = `${fn}  ${file}`;
    const own = !file.startsWith("ext:") && !file.startsWith("(") && !open.has(key);
    if (own) open.add(key);
    for (const child of node.children ?? []) hits += walk(byId.get(child)!, open);
    if (own) {
      open.delete(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + hits);
    }
    return hits;
  };
  walk(profile.nodes[0]!, new Set());
  const ms = (profile.endTime - profile.startTime) / 1000;
  const lines = [`${total} samples over ${(ms / 1000).toFixed(1)} s`, "", "Self time by function:"];
  const rank = (map: Map<string, number>, limit: number) =>
    [...map].sort((a, b) => b[1] - a[1]).slice(0, limit).map(([key, hits]) =>
      `  ${((hits / total) * 100).toFixed(1).padStart(5)}%  ${key}`
    );
  lines.push(
    ...rank(byFunction, top),
    "",
    "Total time (self and callees) of the project's functions:",
    ...rank(inclusive, top),
    "",
    "Self time by file:",
    ...rank(byFile, 15),
  );
  return lines.join("\n");
}

async function main(args: readonly string[]): Promise<void> {
  const loadName = args[0] ?? "fanout";
  const target = (args[1] ?? "herald") as Target;
  const options = LOADS[loadName];
  if (options === undefined) throw new Error(`Unknown load ${loadName}: ${Object.keys(LOADS)}`);
  const dir = await Deno.makeTempDir({ prefix: "herald-profile-" });
  const result = await runLoad(target, {
    ...options,
    denoFlags: ["--cpu-prof", `--cpu-prof-dir=${dir}`],
  });
  console.log(
    `${loadName} on ${target}: ${result.delivered} deliveries, lost ${result.lost}, ` +
      `cpu ${result.cpuSeconds.toFixed(2)} s, p50 ${result.p50.toFixed(2)} ms, ` +
      `p99 ${result.p99.toFixed(2)} ms`,
  );
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.name.endsWith(".cpuprofile")) continue;
    const path = `${dir}/${entry.name}`;
    console.log(`Profile: ${path} (open in Chrome DevTools > Performance)`);
    console.log(summarize(JSON.parse(await Deno.readTextFile(path))));
  }
}

if (import.meta.main) await main(Deno.args);
