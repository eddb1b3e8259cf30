/**
 * The hub: accepts events, gives them ids and cursors, and routes each one to the clients
 * whose subscriptions match, on this node and (through the bus) on every other.
 * @module
 */

import { type Disconnect } from "../events/codes.ts";
import { encodeEventFrame, type EventInput, type HeraldEvent } from "../events/envelope.ts";
import type { SubscriptionFilter } from "../events/messages.ts";
import type { TopicPattern } from "../events/topic.ts";
import type { Bus, BusReceiver } from "./bus.ts";
import { Client, type ClientLimits, type Principal } from "./client.ts";
import type { Clock } from "./clock.ts";
import { type Acceptance, IdempotencyWindow } from "./idempotency.ts";
import type { Metrics } from "./metrics.ts";
import { Sequencer } from "./sequencer.ts";
import { type Subscription, SubscriptionIndex } from "./subscriptions.ts";
import type { Transport } from "./transport.ts";

/** Everything the hub is configured with. */
export interface HubOptions {
  readonly limits: ClientLimits;
  /** Subscriptions one client may hold. */
  readonly maxSubscriptions: number;
  /** How long a producer-supplied id is remembered for idempotent retries. */
  readonly idempotencyTtlMs: number;
  /** At most this many ids are remembered (oldest forgotten first). */
  readonly idempotencyMaxKeys: number;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly bus: Bus;
}

/** Outcome of subscribing. */
export type SubscribeResult =
  | { readonly state: "subscribed" }
  | { readonly state: "limit"; readonly max: number };

/** Routes events to clients. */
export class Hub implements BusReceiver {
  readonly #options: HubOptions;
  readonly #indexes = new Map<string, SubscriptionIndex<Client>>();
  readonly #clients = new Set<Client>();
  readonly #idempotency: IdempotencyWindow;
  readonly #sequencer = new Sequencer();
  #eventNo = 0;

  constructor(options: HubOptions) {
    this.#options = options;
    this.#idempotency = new IdempotencyWindow({
      ttlMs: options.idempotencyTtlMs,
      maxKeys: options.idempotencyMaxKeys,
      clock: options.clock,
    });
    const metrics = options.metrics;
    metrics.gauge("herald_connections", "Clients connected now.", () => this.#clients.size);
    metrics.gauge("herald_subscriptions", "Subscriptions held now.", () => this.subscriptionCount);
    metrics.gauge("herald_queue_depth", "Frames queued for all clients now.", () => {
      let depth = 0;
      for (const client of this.#clients) depth += client.queue.depth;
      return depth;
    });
    metrics.gauge("herald_queue_depth_max", "Frames queued for the most backed-up client.", () => {
      let max = 0;
      for (const client of this.#clients) max = Math.max(max, client.queue.depth);
      return max;
    });
    metrics.gauge(
      "herald_socket_buffered_bytes_max",
      "Bytes buffered in the socket of the most backed-up client.",
      () => {
        let max = 0;
        for (const client of this.#clients) max = Math.max(max, client.bufferedAmount);
        return max;
      },
    );
    metrics.gauge(
      "herald_bus_ready",
      "1 when the bus carries publishes.",
      () => options.bus.ready ? 1 : 0,
    );
  }

  get clientCount(): number {
    return this.#clients.size;
  }

  get subscriptionCount(): number {
    let count = 0;
    for (const index of this.#indexes.values()) count += index.size;
    return count;
  }

  get bus(): Bus {
    return this.#options.bus;
  }

  /** Starts the bus; call once before serving. */
  start(): Promise<void> {
    return this.#options.bus.start(this);
  }

  /** Registers a connected client. */
  connect(transport: Transport, principal: Principal, transportName: string): Client {
    const client = new Client(transport, principal, transportName, {
      limits: this.#options.limits,
      clock: this.#options.clock,
      metrics: this.#options.metrics,
      onClose: (closed) => this.#forget(closed),
    });
    this.#clients.add(client);
    this.#options.metrics.connectionsOpened.incLabel(transportName);
    return client;
  }

  /**
   * Adds a subscription. The first explicit subscription of a client that connected without a
   * topic replaces its implicit `*`.
   */
  subscribe(client: Client, topic: TopicPattern, filter: SubscriptionFilter): SubscribeResult {
    if (client.implicitAll) {
      client.implicitAll = false;
      this.#removeAll(client);
    }
    const key = `${topic.topic}\u0000${filter.appId ?? ""}\u0000${filter.namespace ?? ""}`;
    if (client.subscriptions.has(key)) return { state: "subscribed" };
    const max = this.#options.maxSubscriptions;
    if (client.subscriptions.size >= max) return { state: "limit", max };
    const subscription: Subscription<Client> = {
      owner: client,
      topic,
      appId: filter.appId ?? null,
      namespace: filter.namespace ?? null,
    };
    client.subscriptions.set(key, subscription);
    this.#indexFor(client.principal.tenant).add(subscription);
    return { state: "subscribed" };
  }

  /** Subscribes a client that connected without a topic to everything. */
  subscribeImplicitAll(client: Client, topic: TopicPattern): void {
    this.subscribe(client, topic, {});
    client.implicitAll = true;
  }

  /** Removes every subscription of the client to `topic`, whatever its filters. */
  unsubscribe(client: Client, topic: string): number {
    const index = this.#indexes.get(client.principal.tenant);
    let removed = 0;
    for (const [key, subscription] of client.subscriptions) {
      if (subscription.topic.topic !== topic) continue;
      client.subscriptions.delete(key);
      index?.remove(subscription);
      removed++;
    }
    if (removed > 0) client.implicitAll = false;
    return removed;
  }

  /**
   * Accepts validated events for a tenant: assigns ids, cursors and timestamps, hands them to
   * the bus and delivers them locally, in order. A retried id within the idempotency window
   * is answered with its first acceptance and not delivered again. Rejects with
   * `BusUnavailableError` when the bus cannot take them; then nothing was delivered anywhere.
   */
  async publish(tenant: string, inputs: readonly EventInput[]): Promise<Acceptance[]> {
    const accepted: Acceptance[] = [];
    const fresh: HeraldEvent[] = [];
    const batchIds = new Map<string, Acceptance>();
    const now = new Date(this.#options.clock.now()).toISOString();
    for (const input of inputs) {
      const earlier = input.id === undefined
        ? undefined
        : (batchIds.get(input.id) ?? this.#idempotency.get(tenant, input.id));
      if (earlier !== undefined) {
        this.#options.metrics.eventsDuplicate.inc();
        accepted.push(earlier);
        continue;
      }
      const event: HeraldEvent = {
        tenant,
        type: input.type,
        ...(input.appId !== undefined && { appId: input.appId }),
        ...(input.namespace !== undefined && { namespace: input.namespace }),
        payload: input.payload,
        id: input.id ?? crypto.randomUUID(),
        seq: this.#sequencer.next(tenant),
        timestamp: input.timestamp ?? now,
      };
      const acceptance = { id: event.id, seq: event.seq };
      if (input.id !== undefined) batchIds.set(input.id, acceptance);
      accepted.push(acceptance);
      fresh.push(event);
    }
    if (fresh.length === 0) return accepted;
    const keyed = new Set(batchIds.keys());
    // Another node may have accepted a keyed id first: answer with its acceptance, deliver once.
    const earlier = await this.#options.bus.publish(fresh, keyed);
    let published = 0;
    for (const event of fresh) {
      const first = earlier.get(event.id);
      if (first !== undefined) {
        this.#idempotency.remember(tenant, first);
        this.#options.metrics.eventsDuplicate.inc();
        continue;
      }
      if (keyed.has(event.id)) this.#idempotency.remember(tenant, event);
      this.#route(event);
      published++;
    }
    this.#options.metrics.eventsPublished.inc(published);
    return earlier.size === 0
      ? accepted
      : accepted.map((acceptance) => earlier.get(acceptance.id) ?? acceptance);
  }

  /**
   * Bus receiver: events published on another node. Keyed ids are remembered so a retry that
   * lands on this node is answered with the original acceptance.
   */
  events(events: readonly HeraldEvent[], keyed: ReadonlySet<string>): void {
    this.#options.metrics.eventsReceivedFromBus.inc(events.length);
    for (const event of events) {
      if (keyed.size > 0 && keyed.has(event.id)) this.#idempotency.remember(event.tenant, event);
      this.#route(event);
    }
  }

  /** Bus receiver: this node missed messages; every client may have missed events. */
  gap(_origin: string, missed: number): void {
    this.#options.metrics.busGaps.inc();
    this.#options.metrics.eventsDropped.incLabel("bus_gap", missed);
    for (const client of this.#clients) client.noteLost(missed);
  }

  /** Closes every client (shutdown). */
  closeAll(disconnect: Disconnect): void {
    for (const client of [...this.#clients]) client.close(disconnect);
  }

  #route(event: HeraldEvent): void {
    const index = this.#indexes.get(event.tenant);
    if (index === undefined || index.size === 0) return;
    const delivery = {
      frame: encodeEventFrame(event),
      key: `${event.type}\u0000${event.appId ?? ""}`,
    };
    const eventNo = ++this.#eventNo;
    index.match(event.type, event.appId, event.namespace, (subscription) => {
      const client = subscription.owner;
      if (client.lastEventNo === eventNo) return;
      client.lastEventNo = eventNo;
      client.deliver(delivery);
    });
  }

  #indexFor(tenant: string): SubscriptionIndex<Client> {
    let index = this.#indexes.get(tenant);
    if (index === undefined) {
      index = new SubscriptionIndex();
      this.#indexes.set(tenant, index);
    }
    return index;
  }

  #removeAll(client: Client): void {
    const index = this.#indexes.get(client.principal.tenant);
    for (const subscription of client.subscriptions.values()) index?.remove(subscription);
    client.subscriptions.clear();
  }

  #forget(client: Client): void {
    this.#removeAll(client);
    this.#clients.delete(client);
  }
}
