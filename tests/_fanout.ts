/**
 * Helpers shared by the fan-out suites: which node a WebSocket landed on, publishing over a
 * fresh connection, and checking what every client received.
 * @module
 */

import assert from "node:assert/strict";
import { type Frame, TEST_TOKEN, TestClient, waitFor } from "./_harness.ts";

/** Asks a hub started with `HERALD_DEBUG_HOOKS=1` which node (isolate) this client is on. */
export async function nodeOf(client: TestClient): Promise<string> {
  const requestId = crypto.randomUUID();
  const reply = await client.request({ type: "request", topic: "debug.node", requestId });
  return reply.payload.node as string;
}

/** Opens clients until they cover `nodes` distinct nodes; returns them grouped by node. */
export async function clientsOnNodes(
  wsUrl: string,
  nodes: number,
  perNode = 1,
): Promise<{ byNode: Map<string, TestClient[]>; all: TestClient[] }> {
  const byNode = new Map<string, TestClient[]>();
  const all: TestClient[] = [];
  const covered = () =>
    byNode.size >= nodes && [...byNode.values()].every((list) => list.length >= perNode);
  for (let attempt = 0; attempt < 60 && !covered(); attempt++) {
    const client = await TestClient.connect(wsUrl);
    all.push(client);
    const node = await nodeOf(client);
    byNode.set(node, [...(byNode.get(node) ?? []), client]);
  }
  assert.ok(covered(), `clients landed on ${byNode.size} nodes, wanted ${nodes}`);
  return { byNode, all };
}

/** POSTs to /events over a new TCP connection, so keep-alive cannot pin it to one isolate. */
export async function publishFresh(baseUrl: string, body: unknown): Promise<Response> {
  const httpClient = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  try {
    const response = await fetch(`${baseUrl}/events`, {
      method: "POST",
      client: httpClient,
      headers: { authorization: `Bearer ${TEST_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    await response.clone().arrayBuffer();
    return response;
  } finally {
    httpClient.close();
  }
}

/** GETs a path over a fresh connection and returns status and text. */
export async function getFresh(url: string): Promise<{ status: number; text: string }> {
  const httpClient = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  try {
    const response = await fetch(url, { client: httpClient });
    return { status: response.status, text: await response.text() };
  } finally {
    httpClient.close();
  }
}

/** Waits until a hub answers /ready with 200. */
export function waitReady(baseUrl: string, timeoutMs = 15_000): Promise<boolean> {
  return waitFor(
    async () => (await getFresh(`${baseUrl}/ready`)).status === 200,
    `${baseUrl}/ready to answer 200`,
    timeoutMs,
  );
}

/** An event of producer `producer` numbered `n`, with a producer id (idempotency key). */
export function producerEvent(producer: string, n: number): Record<string, unknown> {
  return { type: "fanout.step", appId: producer, id: `${producer}-${n}`, payload: { n } };
}

/**
 * Asserts a client got exactly `count` events of every producer in `producers`, each once and
 * in the order each producer published them.
 */
export function assertExactlyOnceInOrder(
  events: readonly Frame[],
  producers: readonly string[],
  count: number,
  who: string,
): void {
  const ids = events.map((event) => event.id as string);
  assert.equal(new Set(ids).size, ids.length, `${who} received a duplicate`);
  for (const producer of producers) {
    const seen = events.filter((event) => event.appId === producer).map((event) =>
      event.payload.n as number
    );
    assert.deepEqual(
      seen,
      Array.from({ length: count }, (_, n) => n),
      `${who}: events of ${producer} missing or out of order`,
    );
  }
}
