import assert from "node:assert/strict";
import { publishSeqs, startTestHub, waitFor } from "./_harness.ts";
import { SseReader } from "./_sse.ts";

const step = (appId: string, n: number) => ({
  type: "deploy.step",
  appId,
  payload: { step: `s${n}`, status: "running" },
});

Deno.test("SSE streams matching events: event = type, id = seq, data = the frame", async () => {
  await using hub = startTestHub();
  await using stream = await SseReader.open(`${hub.url}/events/stream?topic=deploy.*&appId=web`);
  assert.equal(stream.response.headers.get("content-type"), "text/event-stream; charset=utf-8");
  await waitFor(() => stream.comments.length > 0, "the opening comment");
  const [seq] = await publishSeqs(hub, [
    step("web", 1),
    step("api", 2),
    { type: "log.line", appId: "web", payload: { line: "x" } },
  ]);
  const [event] = await stream.waitForEvents(1);
  assert.equal(event!.event, "deploy.step");
  assert.equal(event!.id, seq);
  assert.equal(event!.data.seq, seq);
  assert.deepEqual(event!.data.payload, { step: "s1", status: "running" });
  await publishSeqs(hub, [step("web", 3)]);
  await stream.waitForEvents(2);
  assert.equal(stream.events.length, 2, "api and log events were filtered out");
});

Deno.test("SSE resumes after Last-Event-ID, announcing the replay first", async () => {
  await using hub = startTestHub();
  const seqs = await publishSeqs(hub, [1, 2, 3, 4].map((n) => step("web", n)));
  // The URL's since is older; the header (what EventSource sends on reconnect) wins.
  await using stream = await SseReader.open(
    `${hub.url}/events/stream?topic=deploy.*&since=${seqs[0]}`,
    { "last-event-id": seqs[1]! },
  );
  await stream.waitForEvents(2);
  const live = await publishSeqs(hub, [step("web", 5)]);
  await stream.waitForEvents(3);
  assert.equal(stream.messages[0]!.event, "response");
  assert.deepEqual(stream.messages[0]!.data.payload, {
    status: "subscribed",
    topic: "deploy.*",
    recovered: true,
    replayed: 2,
  });
  assert.deepEqual(stream.events.map((event) => event.id), [seqs[2], seqs[3], live[0]]);
});

Deno.test("SSE sends comment heartbeats and checks the origin", async () => {
  await using hub = startTestHub({ HERALD_SSE_HEARTBEAT: "1" });
  await using stream = await SseReader.open(`${hub.url}/events/stream`);
  await waitFor(() => stream.comments.includes("heartbeat"), "a heartbeat", 5000);
  const refused = await fetch(`${hub.url}/events/stream`, {
    headers: { origin: "https://evil.example" },
  });
  assert.equal(refused.status, 403);
  assert.equal((await refused.json()).error.code, "origin_forbidden");
  // An allowed browser origin is named back, or the page may not read the stream (CORS).
  const page = "http://localhost:3000";
  await using allowed = await SseReader.open(`${hub.url}/events/stream`, { origin: page });
  assert.equal(allowed.response.headers.get("access-control-allow-origin"), page);
  assert.equal(stream.response.headers.get("access-control-allow-origin"), null);
  const metrics = await (await fetch(`${hub.url}/metrics`)).text();
  assert.match(metrics, /herald_connections_opened_total\{transport="sse"\} 2/);
});
