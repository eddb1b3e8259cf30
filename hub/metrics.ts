/**
 * Herald's own metrics: one registry, read two ways.
 *
 * - `/metrics` renders it in Prometheus text exposition format ({@linkcode Metrics.render}).
 * - OpenTelemetry: every counter and gauge is also an observable instrument of the meter
 *   `herald` from `npm:@opentelemetry/api`. With `OTEL_DENO=true` Deno registers the meter
 *   provider itself and calls the instruments' callbacks at each export, which read the same
 *   numbers `/metrics` renders; without it the API's meter is a no-op and no callback ever runs.
 *
 * Counters are plain numbers, so counting on the hot path costs an add whichever way they are
 * read; both readers run only at collection time. Hand-written rather than `prom-client`: that
 * package is built around Node's cluster and process APIs, and Herald needs only counters with
 * a few fixed labels plus gauges read at scrape time.
 *
 * OpenTelemetry names follow from the Prometheus names ({@linkcode otelName}):
 * `herald_events_published_total` is `herald.events.published`, `herald_bus_lag_seconds` is
 * `herald.bus.lag` in unit `s`; labels are attributes of the same name. A collector's
 * Prometheus exporter turns them back into the `/metrics` names.
 * @module
 */

import { type Meter, metrics as otelMetrics, type ObservableResult } from "@opentelemetry/api";

/** A monotonically increasing count, optionally split by one label. */
export class Counter {
  readonly name: string;
  readonly help: string;
  readonly label: string | undefined;
  value = 0;
  readonly #byLabel = new Map<string, number>();

  constructor(name: string, help: string, label?: string) {
    this.name = name;
    this.help = help;
    this.label = label;
  }

  inc(by = 1): void {
    this.value += by;
  }

  /** Increments the series for one label value. */
  incLabel(labelValue: string, by = 1): void {
    this.#byLabel.set(labelValue, (this.#byLabel.get(labelValue) ?? 0) + by);
  }

  /** The value of one labelled series (0 when never incremented). */
  get(labelValue: string): number {
    return this.#byLabel.get(labelValue) ?? 0;
  }

  /** Reports every series to an OpenTelemetry observable instrument. */
  observe(result: ObservableResult): void {
    if (this.label === undefined) {
      result.observe(this.value);
      return;
    }
    for (const [labelValue, count] of this.#byLabel) {
      result.observe(count, { [this.label]: labelValue });
    }
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    if (this.label === undefined) {
      lines.push(`${this.name} ${this.value}`);
    } else {
      for (const [labelValue, count] of this.#byLabel) {
        lines.push(`${this.name}{${this.label}="${escapeLabel(labelValue)}"} ${count}`);
      }
    }
    return lines.join("\n");
  }
}

/** A value read when scraped. */
export class Gauge {
  readonly name: string;
  readonly help: string;
  readonly read: () => number;

  constructor(name: string, help: string, read: () => number) {
    this.name = name;
    this.help = help;
    this.read = read;
  }

  render(): string {
    return [
      `# HELP ${this.name} ${this.help}`,
      `# TYPE ${this.name} gauge`,
      `${this.name} ${this.read()}`,
    ]
      .join("\n");
  }
}

/**
 * The OpenTelemetry name and unit of a Prometheus metric name: `_total` and a unit suffix
 * dropped (the collector's Prometheus exporter adds them back from the instrument kind and
 * unit), underscores turned into dots.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { otelName } from "./metrics.ts";
 * assert.deepEqual(otelName("herald_events_published_total"), { name: "herald.events.published" });
 * assert.deepEqual(otelName("herald_bus_lag_seconds"), { name: "herald.bus.lag", unit: "s" });
 * ```
 */
export function otelName(prometheusName: string): { name: string; unit?: string } {
  let base = prometheusName.replace(/_total$/, "");
  let unit: string | undefined;
  if (base.endsWith("_seconds")) {
    base = base.slice(0, -"_seconds".length);
    unit = "s";
  }
  const name = base.replaceAll("_", ".");
  return unit === undefined ? { name } : { name, unit };
}

function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

/** The agents-online gauge: registered by every hub, fed by the agents feature. */
export const AGENTS_ONLINE = {
  name: "herald_agents_online",
  help: "Agents connected to this node now.",
} as const;

/**
 * The hub's counters. Gauges are registered by whoever owns the state they read.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Metrics } from "./metrics.ts";
 * const metrics = new Metrics();
 * metrics.eventsPublished.inc(2);
 * metrics.gauge("herald_connections", "Clients connected now.", () => 3);
 * assert.match(metrics.render(), /^herald_events_published_total 2$/m);
 * assert.match(metrics.render(), /^herald_connections 3$/m);
 * ```
 */
export class Metrics {
  readonly connectionsOpened = new Counter(
    "herald_connections_opened_total",
    "Client connections accepted, by transport.",
    "transport",
  );
  readonly eventsPublished = new Counter(
    "herald_events_published_total",
    "Events accepted from producers on this node.",
  );
  readonly eventsDuplicate = new Counter(
    "herald_events_duplicate_total",
    "Publishes of an id already accepted within the idempotency window (answered, not delivered again).",
  );
  readonly eventsReceivedFromBus = new Counter(
    "herald_bus_events_received_total",
    "Events received from other nodes through the bus.",
  );
  readonly busGaps = new Counter(
    "herald_bus_gaps_total",
    "Gaps the bus detected in another node's messages (each one reported to clients).",
  );
  readonly eventsDelivered = new Counter(
    "herald_events_delivered_total",
    "Event frames written to client sockets.",
  );
  readonly eventsDropped = new Counter(
    "herald_events_dropped_total",
    "Events dropped for a client by its overflow policy, by reason.",
    "reason",
  );
  readonly slowConsumerDisconnects = new Counter(
    "herald_slow_consumer_disconnects_total",
    "Clients closed with 4008 slow consumer, by reason.",
    "reason",
  );
  readonly messagesReceived = new Counter(
    "herald_messages_received_total",
    "Control messages received from clients.",
  );
  readonly authRefusals = new Counter(
    "herald_auth_refusals_total",
    "Requests and connections the auth seam refused, by code (unauthorized, forbidden).",
    "code",
  );
  readonly limitRefusals = new Counter(
    "herald_limit_refusals_total",
    "Requests refused by a limit, by limit (connections_total, connections_per_ip, connections_per_tenant, publish_rate, upgrade_rate).",
    "limit",
  );
  readonly tokensFileReloads = new Counter(
    "herald_tokens_file_reloads_total",
    "Loads of HERALD_TOKENS_FILE, by outcome (ok, or failed: the previous tokens stayed).",
    "outcome",
  );
  readonly revokedConnections = new Counter(
    "herald_revoked_connections_total",
    "Live connections closed with 4001 because a tokens file reload revoked their token or narrowed it below what they hold, by transport (websocket, sse, agent).",
    "transport",
  );
  readonly errorsSent = new Counter(
    "herald_errors_total",
    "Error replies sent to clients and publish requests rejected, by code.",
    "code",
  );
  readonly resumes = new Counter(
    "herald_resumes_total",
    "Subscriptions with a since cursor, by outcome (recovered, or why not).",
    "outcome",
  );
  readonly statusUnchanged = new Counter(
    "herald_resource_status_unchanged_total",
    "resource.status events repeating the resource's current status (stored, not broadcast).",
  );
  readonly #gauges: Gauge[] = [];
  readonly #meter: Meter;
  #agentsOnline: () => number = () => 0;

  /**
   * `meter` defaults to the meter `herald` of the global OpenTelemetry API (a no-op unless
   * `OTEL_DENO=true`); tests pass their own.
   */
  constructor(meter: Meter = otelMetrics.getMeter("herald")) {
    this.#meter = meter;
    for (const counter of this.#counters()) {
      const { name, unit } = otelName(counter.name);
      this.#meter
        .createObservableCounter(name, { description: counter.help, ...(unit && { unit }) })
        .addCallback((result) => counter.observe(result));
    }
    this.gauge(AGENTS_ONLINE.name, AGENTS_ONLINE.help, () => this.#agentsOnline());
  }

  /** Adds a gauge read at scrape time (and at each OpenTelemetry export). */
  gauge(name: string, help: string, read: () => number): void {
    this.#gauges.push(new Gauge(name, help, read));
    const otel = otelName(name);
    this.#meter
      .createObservableGauge(otel.name, {
        description: help,
        ...(otel.unit && { unit: otel.unit }),
      })
      .addCallback((result) => result.observe(read()));
  }

  /** Where {@linkcode AGENTS_ONLINE} reads the number of agents connected to this node. */
  countAgentsWith(read: () => number): void {
    this.#agentsOnline = read;
  }

  #counters(): Counter[] {
    return [
      this.connectionsOpened,
      this.eventsPublished,
      this.eventsDuplicate,
      this.eventsReceivedFromBus,
      this.busGaps,
      this.eventsDelivered,
      this.eventsDropped,
      this.slowConsumerDisconnects,
      this.messagesReceived,
      this.errorsSent,
      this.resumes,
      this.statusUnchanged,
      this.authRefusals,
      this.limitRefusals,
      this.tokensFileReloads,
      this.revokedConnections,
    ];
  }

  /** The whole registry in Prometheus text format. */
  render(): string {
    return [...this.#counters(), ...this.#gauges].map((metric) => metric.render()).join("\n") +
      "\n";
  }
}
