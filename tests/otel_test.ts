/**
 * OpenTelemetry end to end: a hub child process run with `OTEL_DENO=true` exports to a real
 * OTLP/HTTP receiver in this test (JSON encoding, `OTEL_EXPORTER_OTLP_PROTOCOL=http/json`).
 * Herald's metrics arrive under their OpenTelemetry names with the same values `/metrics`
 * shows, and its log records arrive as OTel logs through Deno's console capture.
 */
import assert from "node:assert/strict";
import { readMetrics, TestClient, waitFor } from "./_harness.ts";
import { baseEnv, launch, publishWith, ROOT } from "./_deploy.ts";

/** One data point of an OTLP JSON export: the metric's name, value and attributes. */
interface Point {
  readonly name: string;
  readonly value: number;
  readonly attributes: Record<string, string>;
}

// deno-lint-ignore no-explicit-any
type Json = any;

/** An OTLP/HTTP receiver that keeps the JSON bodies it is sent, by signal. */
function otlpReceiver() {
  const metrics: Json[] = [];
  const logs: Json[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      const body = await request.json();
      const path = new URL(request.url).pathname;
      if (path === "/v1/metrics") metrics.push(body);
      if (path === "/v1/logs") logs.push(body);
      return Response.json({});
    },
  );
  /** The data points of the newest export that holds `name`. */
  const latest = (name: string): Point[] => {
    for (const body of metrics.toReversed()) {
      const points = pointsOf(body).filter((point) => point.name === name);
      if (points.length > 0) return points;
    }
    return [];
  };
  const logBodies = (): string[] =>
    logs.flatMap((body) =>
      body.resourceLogs.flatMap((resource: Json) =>
        resource.scopeLogs.flatMap((scope: Json) =>
          scope.logRecords.map((record: Json) => String(record.body?.stringValue ?? ""))
        )
      )
    );
  return { url: `http://127.0.0.1:${server.addr.port}`, latest, logBodies, server };
}

function pointsOf(body: Json): Point[] {
  const points: Point[] = [];
  for (const resource of body.resourceMetrics ?? []) {
    for (const scope of resource.scopeMetrics ?? []) {
      for (const metric of scope.metrics ?? []) {
        const data = metric.sum ?? metric.gauge;
        for (const point of data?.dataPoints ?? []) {
          const attributes: Record<string, string> = {};
          for (const { key, value } of point.attributes ?? []) attributes[key] = value.stringValue;
          const value = Number(point.asInt ?? point.asDouble ?? 0);
          points.push({ name: metric.name, value, attributes });
        }
      }
    }
  }
  return points;
}

Deno.test("OTEL_DENO=true: Herald's metrics reach an OTLP receiver with /metrics' values, its logs too", async () => {
  const receiver = otlpReceiver();
  const dir = await Deno.makeTempDir({ prefix: "herald-otel-" });
  try {
    await using hub = await launch({
      command: Deno.execPath(),
      args: ["run", "-A", `${ROOT}main.ts`],
      cwd: dir,
      env: {
        ...baseEnv(),
        PORT: "0",
        HERALD_HOSTNAME: "127.0.0.1",
        HERALD_LOG_FORMAT: "json",
        OTEL_DENO: "true",
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_METRIC_EXPORT_INTERVAL: "200",
        OTEL_SERVICE_NAME: "herald-otel-test",
      },
    });
    const token = (await Deno.readTextFile(`${dir}/.herald/publish-token`)).trim();
    await using client = await TestClient.connect(`ws://127.0.0.1:${hub.port}/ws?topic=deploy.*`);
    for (const appId of ["a", "b", "c"]) {
      assert.equal(await publishWith(hub.url, token, { type: "deploy.queued", appId }), 202);
    }
    await client.waitForEvents(3, 10_000);

    const value = (name: string) => receiver.latest(name)[0]?.value;
    await waitFor(
      () => value("herald.events.published") === 3 && value("herald.events.delivered") === 3,
      "an export with 3 events published and delivered",
      15_000,
    );
    // One source of truth: what /metrics shows now is what the last export said.
    const scraped = await readMetrics(hub.url);
    assert.equal(scraped.get("herald_events_published_total"), 3);
    assert.equal(scraped.get("herald_events_delivered_total"), 3);
    assert.equal(value("herald.connections"), 1);
    assert.equal(value("herald.subscriptions"), 1);
    assert.equal(value("herald.agents.online"), 0);
    const opened = receiver.latest("herald.connections.opened");
    assert.deepEqual(opened.map((point) => point.attributes), [{ transport: "websocket" }]);
    // Every series /metrics has is exported, under its OpenTelemetry name.
    for (const name of ["herald.bus.lag", "herald.bus.ready", "herald.queue.depth"]) {
      assert.ok(receiver.latest(name).length > 0, `${name} is exported`);
    }

    await waitFor(
      () => receiver.logBodies().some((body) => body.includes("Herald listening on")),
      "the listening log record among the exported logs",
      15_000,
    );
    assert.ok(
      receiver.logBodies().every((body) => !body.includes(token)),
      "no exported log holds the token",
    );
    assert.equal((await hub.stop("SIGTERM")).code, 0);
  } finally {
    await receiver.server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
