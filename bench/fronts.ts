/**
 * What the HTTP front costs per request (`deno task bench:fronts [requests]`): starts a hub with
 * `HERALD_HTTP_SERVER=node` and one with `deno`, in alternation, posts `requests` single events
 * to each over one keep-alive connection, and prints the hub's CPU time per request from
 * /proc. The WebSocket side is the runtime's under both fronts; `deno task bench:layers`
 * measures their memory per connection.
 * @module
 */

import { spawnHub, TEST_TOKEN } from "../tests/_harness.ts";
import { cpuSeconds } from "./_proc.ts";
import { HERALD_ENV } from "./_load.ts";

const FRONTS = ["node", "deno"] as const;
const ROUNDS = 3;

/** Server CPU microseconds per `POST /events` of one small event through `front`. */
async function cpuPerPost(front: typeof FRONTS[number], requests: number): Promise<number> {
  await using hub = await spawnHub({
    ...HERALD_ENV,
    HERALD_HTTP_SERVER: front,
    HERALD_PUBLISH_RATE: "1000000",
    HERALD_PUBLISH_BURST: "1000000",
  });
  const post = async (index: number) => {
    const response = await fetch(`${hub.url}/events`, {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ type: "bench.tick", payload: { index, pad: "x".repeat(40) } }),
    });
    await response.arrayBuffer();
    if (response.status !== 202) throw new Error(`POST /events answered ${response.status}`);
  };
  // Warm up: code compiled on first use is not what a request costs.
  for (let index = 0; index < 500; index++) await post(index);
  const before = await cpuSeconds(hub.child.pid);
  for (let index = 0; index < requests; index++) await post(index);
  return (await cpuSeconds(hub.child.pid) - before) / requests * 1e6;
}

if (import.meta.main) {
  const requests = Number(Deno.args[0] ?? 3000);
  const results: Record<string, number[]> = { node: [], deno: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const front of round % 2 === 0 ? FRONTS : [...FRONTS].reverse()) {
      results[front]!.push(await cpuPerPost(front, requests));
    }
  }
  console.log(`Hub CPU per POST /events, ${requests} requests, ${ROUNDS} rounds (µs, median)`);
  for (const front of FRONTS) {
    const sorted = [...results[front]!].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    console.log(
      `HERALD_HTTP_SERVER=${front.padEnd(4)} ${median.toFixed(0).padStart(5)}  (${
        sorted.map((value) => value.toFixed(0)).join(", ")
      })`,
    );
  }
}
