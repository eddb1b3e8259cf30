/**
 * Counters and gauges in Prometheus text exposition format.
 *
 * Hand-written rather than `prom-client`: that package is built around Node's cluster and
 * process APIs, and Herald needs only counters with a few fixed labels plus gauges read at
 * scrape time. Counters are plain numbers so incrementing one on the hot path costs an add.
 * @module
 */

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

function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

/** The hub's counters. Gauges are registered by whoever owns the state they read. */
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

  /** Adds a gauge read at scrape time. */
  gauge(name: string, help: string, read: () => number): void {
    this.#gauges.push(new Gauge(name, help, read));
  }

  /** The whole registry in Prometheus text format. */
  render(): string {
    const counters = [
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
    ];
    return [...counters, ...this.#gauges].map((metric) => metric.render()).join("\n") + "\n";
  }
}
