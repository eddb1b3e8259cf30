/**
 * The broadcast bus across the isolates of `deno serve --parallel main.ts`: per-producer order
 * and exactly-once delivery for clients on every isolate, idempotent retries landing on
 * another isolate, and a real lagging isolate whose gap is detected and reported.
 */

import assert from "node:assert/strict";
import { spawnHub, waitFor } from "./_harness.ts";
import {
  assertExactlyOnceInOrder,
  clientsOnNodes,
  getFresh,
  producerEvent,
  publishFresh,
} from "./_fanout.ts";

const PRODUCERS = ["alpha", "beta", "gamma"];
const PER_PRODUCER = 30;

Deno.test("deno serve --parallel: every client on every isolate gets each event once, in producer order", async () => {
  await using hub = await spawnHub(
    { HERALD_BUS: "broadcast", HERALD_DEBUG_HOOKS: "1" },
    [],
    { parallel: 2 },
  );
  const { byNode, all } = await clientsOnNodes(hub.wsUrl, 2);
  try {
    // Producers publish concurrently, each one sequentially over a fresh connection per
    // request, so consecutive events of one producer land on different isolates.
    await Promise.all(PRODUCERS.map(async (producer) => {
      for (let n = 0; n < PER_PRODUCER; n++) {
        const response = await publishFresh(hub.url, producerEvent(producer, n));
        assert.equal(response.status, 202);
      }
    }));
    const total = PRODUCERS.length * PER_PRODUCER;
    for (const [node, clients] of byNode) {
      for (const client of clients) {
        await client.waitForEvents(total, 10_000);
        assertExactlyOnceInOrder(client.events, PRODUCERS, PER_PRODUCER, `client on ${node}`);
      }
    }

    // Retries of one id, over fresh connections (so on either isolate): same id and seq.
    const first = await (await publishFresh(hub.url, producerEvent("alpha", 0))).json();
    const original = all[0]!.events.find((event) => event.id === "alpha-0")!;
    assert.deepEqual(first.accepted, [{ id: "alpha-0", seq: original.seq }]);
    for (let retry = 0; retry < 6; retry++) {
      const response = await publishFresh(hub.url, producerEvent("alpha", 0));
      assert.equal(response.status, 202);
      assert.deepEqual((await response.json()).accepted, first.accepted);
    }
    // A marker published after the retries: once it arrives, any duplicate would have too.
    await publishFresh(hub.url, { type: "fanout.done", id: "marker" });
    for (const client of all) {
      await client.waitForFrame((frame) => frame.id === "marker", "the marker", 5000);
      assert.equal(client.events.filter((event) => event.id === "alpha-0").length, 1);
    }
  } finally {
    for (const client of all) await client.close();
  }
});

Deno.test("deno serve --parallel: an isolate that falls behind detects the gap and tells its clients", async () => {
  const burst = 600;
  await using hub = await spawnHub(
    {
      HERALD_BUS: "broadcast",
      HERALD_DEBUG_HOOKS: "1",
      // One event per bus message, so the burst is 600 messages (Deno keeps 256 per isolate).
      HERALD_BUS_BATCH_MAX: "1",
      HERALD_OVERFLOW: "drop-oldest",
      HERALD_CLIENT_BUFFER: "5000",
      HERALD_MESSAGE_RATE: "100000",
      HERALD_MESSAGE_BURST: "100000",
    },
    [],
    { parallel: 2 },
  );
  const { byNode, all } = await clientsOnNodes(
    `${hub.wsUrl}?token=test-publish-token-0123456789`,
    2,
  );
  try {
    const [[publisherNode, [publisher]], [laggingNode, [lagging]]] = [...byNode] as [
      [string, [typeof all[0]]],
      [string, [typeof all[0]]],
    ];
    assert.notEqual(publisherNode, laggingNode);
    // The lagging isolate blocks for 1.5 s on the first bus message it receives.
    const armed = await lagging!.request({
      type: "request",
      topic: "debug.stallOnBusMessage",
      requestId: "arm",
      payload: { ms: 1500 },
    });
    assert.equal(armed.payload.armed, true);
    for (let n = 0; n < burst; n++) {
      publisher!.send({ type: "publish", event: producerEvent("burst", n) });
    }
    // The publisher's isolate delivers everything to its own client.
    await publisher!.waitForEvents(burst, 15_000);
    assertExactlyOnceInOrder(
      publisher!.events,
      ["burst"],
      burst,
      "client on the publishing isolate",
    );

    // The lagging isolate lost messages; its client is told exactly how many events it missed.
    const notices = await waitFor(
      () => {
        const lagged = lagging!.frames.filter((frame) => frame.type === "lagged");
        const dropped = lagged.reduce((sum, frame) => sum + frame.payload.dropped, 0);
        return dropped + lagging!.events.length === burst ? lagged : null;
      },
      "lagged notices plus events to account for the whole burst",
      15_000,
    );
    assert.ok(notices.length >= 1);
    assert.ok(notices.every((frame) => frame.payload.reason === "bus_gap"));
    const seen = lagging!.events.map((event) => event.payload.n as number);
    assert.ok(seen.length < burst, "the lagging isolate should have missed some events");
    assert.deepEqual(seen, [...seen].sort((a, b) => a - b), "what arrived is still in order");

    // The gap is counted in that isolate's /metrics (requests land on either isolate).
    await waitFor(
      async () => {
        const { text } = await getFresh(`${hub.url}/metrics`);
        return /^herald_bus_gaps_total [1-9]/m.test(text) &&
          /herald_events_dropped_total\{reason="bus_gap"\} [1-9]/.test(text);
      },
      "an isolate reporting the gap in /metrics",
      10_000,
    );
  } finally {
    for (const client of all) await client.close();
  }
});

Deno.test("deno serve --parallel: SIGTERM closes clients with 1001 on every isolate and exits 0", async () => {
  const hub = await spawnHub({ HERALD_BUS: "broadcast", HERALD_DEBUG_HOOKS: "1" }, [], {
    parallel: 2,
  });
  const { all } = await clientsOnNodes(hub.wsUrl, 2);
  const status = await hub.stop();
  assert.equal(status.code, 0);
  for (const client of all) assert.equal((await client.closedPromise).code, 1001);
  const clean = hub.logs.filter((line) => line.includes("Shut down cleanly"));
  assert.equal(clean.length, 2, hub.logs.join("\n"));
});
