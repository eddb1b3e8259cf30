import assert from "node:assert/strict";
import type { Attributes, Meter, ObservableCallback, ObservableResult } from "@opentelemetry/api";
import { Metrics } from "./metrics.ts";

/** A meter that keeps each observable instrument's callbacks, to collect them on demand. */
function recordingMeter() {
  const callbacks = new Map<string, ObservableCallback[]>();
  const instrument = (name: string) => ({
    addCallback: (callback: ObservableCallback) =>
      callbacks.set(name, [...(callbacks.get(name) ?? []), callback]),
    removeCallback: () => {},
  });
  const meter = {
    createObservableCounter: instrument,
    createObservableGauge: instrument,
  } as unknown as Meter;
  const collect = () => {
    const points = new Map<string, number>();
    for (const [name, list] of callbacks) {
      const result: ObservableResult = {
        observe: (value: number, attributes: Attributes = {}) => {
          const labels = Object.entries(attributes).map(([k, v]) => `${k}="${v}"`).join(",");
          points.set(labels === "" ? name : `${name}{${labels}}`, value);
        },
      };
      for (const callback of list) void callback(result);
    }
    return points;
  };
  return { meter, collect };
}

Deno.test("metrics: the OpenTelemetry instruments read the numbers /metrics renders, at collection", () => {
  const { meter, collect } = recordingMeter();
  const metrics = new Metrics(meter);
  let connections = 2;
  metrics.gauge("herald_connections", "Clients connected now.", () => connections);
  metrics.countAgentsWith(() => 4);
  metrics.eventsPublished.inc(3);
  metrics.eventsDelivered.value++;
  metrics.eventsDropped.incLabel("queue_full", 2);
  connections = 5;
  const points = collect();
  assert.equal(points.get("herald.events.published"), 3);
  assert.equal(points.get("herald.events.delivered"), 1);
  assert.equal(points.get('herald.events.dropped{reason="queue_full"}'), 2);
  assert.equal(points.get("herald.connections"), 5, "read at collection, not at registration");
  assert.equal(points.get("herald.agents.online"), 4);
  const text = metrics.render();
  assert.match(text, /^herald_events_published_total 3$/m);
  assert.match(text, /^herald_events_dropped_total\{reason="queue_full"\} 2$/m);
  assert.match(text, /^herald_connections 5$/m);
  assert.match(text, /^herald_agents_online 4$/m);
});
