/**
 * What one idle connection keeps on the JS heap
 * (`deno task bench:heap [herald|floor] [count] [topics]`):
 * serves Herald (as the test harness does, in this process) or the floor, takes a V8 heap
 * snapshot before and after a receiver process connects `count` clients, and prints the growth
 * per connection by object type and constructor. With `topics`, every client subscribes to that
 * many exact topics instead of one app's `*`. The snapshots stay in a temporary directory for
 * Chrome DevTools (Memory > Load). Native memory (sockets, runtime buffers) is not on this heap:
 * compare with scenario 3's RSS figures.
 * @module
 */

import v8 from "node:v8";
import { startTestHub } from "../tests/_harness.ts";
import { HERALD_ENV } from "./_load.ts";
import { LoadProcess } from "./_worker.ts";
import { handler } from "./floor.ts";
import type { ReceiverSpec } from "./receiver.ts";

interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
  nodes: number[];
  strings: string[];
}

/** Count and self size of the snapshot's objects, by type and name. */
function tally(path: string): Map<string, { count: number; bytes: number }> {
  const snapshot = JSON.parse(Deno.readTextFileSync(path)) as HeapSnapshot;
  const fields = snapshot.snapshot.meta.node_fields;
  const types = snapshot.snapshot.meta.node_types[0];
  const [typeAt, nameAt, sizeAt] = ["type", "name", "self_size"].map((f) => fields.indexOf(f));
  const tallies = new Map<string, { count: number; bytes: number }>();
  for (let index = 0; index < snapshot.nodes.length; index += fields.length) {
    const type = types[snapshot.nodes[index + typeAt!]!]!;
    const name = type.includes("string")
      ? "(strings)"
      : type === "code"
      ? "(compiled code)"
      : snapshot.strings[snapshot.nodes[index + nameAt!]!]!.replace(/ @\d+$/, "").slice(0, 60);
    const key = `${type} ${name}`;
    const tally = tallies.get(key) ?? { count: 0, bytes: 0 };
    tally.count++;
    tally.bytes += snapshot.nodes[index + sizeAt!]!;
    tallies.set(key, tally);
  }
  return tallies;
}

async function main(args: readonly string[]): Promise<void> {
  const target = args[0] ?? "herald";
  const count = Number(args[1] ?? 2000);
  const topics = Number(args[2] ?? 0);
  let wsUrl: string;
  if (target === "herald") {
    wsUrl = startTestHub(HERALD_ENV).wsUrl;
  } else {
    const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, handler);
    wsUrl = `ws://127.0.0.1:${server.addr.port}/ws`;
  }
  const settle = () => new Promise((resolve) => setTimeout(resolve, 500));
  // One connection first, so code compiled on first use is in both snapshots.
  const warm = new WebSocket(`${wsUrl}?topic=*`);
  await new Promise((resolve) => (warm.onopen = resolve));
  warm.close();
  await new Promise((resolve) => (warm.onclose = resolve));
  await settle();
  const dir = await Deno.makeTempDir({ prefix: "herald-heap-" });
  const before = v8.writeHeapSnapshot(`${dir}/${target}-before.heapsnapshot`);
  const spec: ReceiverSpec = {
    wsUrl: `${wsUrl}?`,
    protocol: "websocket",
    count,
    firstIndex: 0,
    apps: topics > 0 ? 0 : Math.max(1, Math.floor(count / 10)),
    topics,
    stalled: 0,
    concurrency: 32,
  };
  const receiver = await LoadProcess.spawn(
    "receiver",
    new URL("./receiver.ts", import.meta.url),
    spec,
  );
  await settle();
  const after = v8.writeHeapSnapshot(`${dir}/${target}-after.heapsnapshot`);
  await receiver.stop();
  const [a, b] = [tally(before), tally(after)];
  const rows = [...b].map(([key, { count: n, bytes }]) => ({
    key,
    count: (n - (a.get(key)?.count ?? 0)) / count,
    bytes: (bytes - (a.get(key)?.bytes ?? 0)) / count,
  })).filter((row) => row.bytes >= 8).sort((x, y) => y.bytes - x.bytes);
  const total = rows.reduce((sum, row) => sum + row.bytes, 0);
  console.log(`${target}: ${total.toFixed(0)} bytes of JS heap per idle connection (${count})`);
  console.log("bytes/conn  objects/conn  type and constructor");
  for (const row of rows.slice(0, 40)) {
    console.log(
      `${row.bytes.toFixed(0).padStart(10)}  ${row.count.toFixed(2).padStart(12)}  ${row.key}`,
    );
  }
  console.log(`Snapshots: ${dir}`);
  Deno.exit(0);
}

if (import.meta.main) await main(Deno.args);
