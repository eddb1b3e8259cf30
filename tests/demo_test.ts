/**
 * The demo producer: a `--fast` run against a hub in strict mode ends by itself, and every event
 * it published passes the catalog; the same `--seed` publishes the same events.
 * @module
 */

import assert from "node:assert/strict";
import { decodeEventInput } from "../events/envelope.ts";
import { runCli } from "./_cli.ts";
import { type Frame, startTestHub, TEST_TOKEN } from "./_harness.ts";

/** Runs `deno task demo --fast --seed N` against a strict hub; returns what the hub stored. */
async function fastRun(seed: number): Promise<Frame[]> {
  await using hub = startTestHub({ HERALD_STRICT_EVENTS: "1" });
  await using demo = runCli([
    "--fast",
    "--seed",
    String(seed),
    "--url",
    hub.url,
    "--token",
    TEST_TOKEN,
  ], {
    script: "demo",
  });
  assert.equal(await demo.exit(), 0, demo.stderr.join("\n"));
  const published = Number(demo.stdout.at(-1)?.match(/^demo: (\d+) events published$/)?.[1]);
  assert.ok(published > 50, `a round publishes plenty: ${demo.stdout.join("\n")}`);
  // From the history: a resource.status repeating the current status is stored, not broadcast.
  const history = await (await fetch(`${hub.url}/history?limit=1000`)).json();
  assert.equal(history.events.length, published);
  return history.events;
}

Deno.test("demo --fast: ends by itself, and every event passes the catalog (strict hub)", async () => {
  const events = await fastRun(7);
  for (const event of events) {
    const { seq: _seq, ...input } = event;
    const decoded = decodeEventInput(input, { strict: true });
    assert.ok(decoded.ok, `${JSON.stringify(event)}: ${!decoded.ok && decoded.message}`);
  }
  const types = new Set(events.map((event) => event.type));
  for (
    const type of [
      "deploy.queued",
      "deploy.step",
      "deploy.completed",
      "deploy.failed",
      "forge.completed",
      "teardown.failed",
      "health.check",
      "app.status",
      "log.line",
      "resource.status",
      "persona.created",
      "validation.result",
      "cluster.updated",
      "reconcile.started",
      "reconcile.ended",
    ]
  ) assert.ok(types.has(type), `the demo publishes ${type}`);
});

Deno.test("demo --seed: the same seed publishes the same events", async () => {
  const shape = (events: Frame[]) =>
    events.map((event) => JSON.stringify([event.type, event.appId, event.payload])).sort();
  assert.deepEqual(shape(await fastRun(11)), shape(await fastRun(11)));
});
