import assert from "node:assert/strict";
import type { BusReceiver, DirectedMessage } from "./bus.ts";
import { BroadcastBus } from "./broadcast.ts";

/** A receiver that resolves `next` with each directed message it gets. */
class Inbox implements BusReceiver {
  readonly got: [string, DirectedMessage][] = [];
  #wake: (() => void) | null = null;

  events(): void {}
  gap(): void {}
  message(from: string, message: DirectedMessage): void {
    this.got.push([from, message]);
    this.#wake?.();
  }

  /** Resolves once `count` messages arrived. */
  async until(count: number): Promise<void> {
    while (this.got.length < count) await new Promise<void>((resolve) => (this.#wake = resolve));
  }
}

Deno.test("broadcast bus: a directed message reaches the node it names, in order, and nobody else", async () => {
  const channel = `herald-test-${crypto.randomUUID()}`;
  const nodes = ["a", "b", "c"].map((node) => new BroadcastBus({ node, maxBatch: 10, channel }));
  const inboxes = nodes.map(() => new Inbox());
  for (const [index, bus] of nodes.entries()) await bus.start(inboxes[index]!);
  const [a, b, c] = nodes as [BroadcastBus, BroadcastBus, BroadcastBus];
  await a.send("b", { n: 1 });
  await a.send("b", { n: 2 });
  await c.send("c", { n: 3 });
  // The message to "a" travels behind the others on the channel: once it is in, they are too.
  await b.send("a", { n: 4 });
  await inboxes[0]!.until(1);
  await inboxes[1]!.until(2);
  await inboxes[2]!.until(1);
  assert.deepEqual(inboxes.map((inbox) => inbox.got), [
    [["b", { n: 4 }]],
    [["a", { n: 1 }], ["a", { n: 2 }]],
    [["c", { n: 3 }]],
  ]);
  for (const bus of nodes) await bus.close();
  await assert.rejects(a.send("b", {}), /closed/);
});
