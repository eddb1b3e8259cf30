/**
 * The hub: accepts events, gives them ids and cursors, and routes each one to the clients
 * whose subscriptions match, on this node and (through the bus) on every other.
 * @module
 */

import type { Disconnect } from "../events/codes.ts";
import { encodeEventFrame, type EventInput, type HeraldEvent } from "../events/envelope.ts";
import { matchesFilter, type SubscriptionFilter } from "../events/messages.ts";
import { topicMatches, type TopicPattern } from "../events/topic.ts";
import type { Bus, BusReceiver } from "./bus.ts";
import { Client, type ClientLimits, type Principal } from "./client.ts";
import type { Clock } from "./clock.ts";
import {
  compareCursors,
  type EventDraft,
  type History,
  type LostReason,
  parseCursor,
  type StoredEvent,
} from "./history.ts";
import { type Acceptance, IdempotencyWindow } from "./idempotency.ts";
import type { Metrics } from "./metrics.ts";
import type { LiveState } from "./state.ts";
import { type Subscription, SubscriptionIndex } from "./subscriptions.ts";
import type { Transport } from "./transport.ts";
import { CursorOrder, type Fill } from "./cursor_order.ts";

/**
 * An event's delivery, built once and shared by every client it goes to: the frame, the
 * conflation key (type and appId) and the cursor.
 */
function deliveryOf(event: HeraldEvent, frame: string) {
  return { frame, key: `${event.type}\u0000${event.appId ?? ""}`, seq: event.seq };
}

/** How often marking a refused publish discarded in the history is tried (about ten minutes). */
const DISCARD_ATTEMPTS = 300;

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
  /** Gives events their cursors and keeps them for resume. */
  readonly history: History;
  /** Most events one resume replays; past it the client is told `recovered: false`. */
  readonly replayLimit: number;
  /** Current state folded from every routed event. */
  readonly state: LiveState;
  /** With a shared history: how long an event may wait for an earlier cursor (see CursorOrder). */
  readonly reorderWaitMs: number;
  /** With a shared history: events one tenant may hold waiting before the hole is filled. */
  readonly reorderMaxPending: number;
}

/** How a resume ended: `recovered` false means the client must load a snapshot. */
export type ResumeOutcome =
  | { readonly recovered: true; readonly replayed: number }
  | {
    readonly recovered: false;
    readonly replayed: 0;
    readonly reason: LostReason | "too_many" | "unavailable" | "not_shared";
  };

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
  #eventNo = 0;
  /** Settles when the previous publish has routed its events: routing follows cursor order. */
  #routed: Promise<void> = Promise.resolve();
  /** With a shared history, events of every node are routed through it in cursor order. */
  readonly #order: CursorOrder | null;

  constructor(options: HubOptions) {
    this.#options = options;
    this.#order = options.history.shared
      ? new CursorOrder({
        waitMs: options.reorderWaitMs,
        maxPending: options.reorderMaxPending,
        clock: options.clock,
        fill: (tenant, after, count) => this.#fill(tenant, after, count),
        route: (entry, filled) => {
          // A retried publish that lost the race on another node left a stored copy under a
          // second cursor; the original was delivered, so the copy is not.
          const first = filled
            ? this.#idempotency.get(entry.event.tenant, entry.event.id)
            : undefined;
          if (first !== undefined && first.seq !== entry.event.seq) return;
          this.#route(entry.event, entry.frame);
        },
        gap: (tenant, missed) => this.#lost(tenant, missed),
      })
      : null;
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

  get history(): History {
    return this.#options.history;
  }

  get state(): LiveState {
    return this.#options.state;
  }

  /**
   * Opens the history, rebuilds state from what it retains (a durable history survives
   * restarts), then starts the bus. Call once before serving.
   */
  async start(): Promise<void> {
    const { history, state } = this.#options;
    await history.start();
    for (const tenant of await history.tenants()) {
      const page = await history.read(tenant, { since: null, limit: Number.MAX_SAFE_INTEGER });
      if (page.state !== "ok") continue;
      for (const stored of page.events) state.apply(stored.event);
      const last = page.events.at(-1);
      const cursor = last === undefined ? null : parseCursor(last.event.seq);
      if (cursor !== null) this.#order?.startAfter(tenant, cursor.epoch, cursor.n);
    }
    await this.#options.bus.start(this);
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
   * Accepts validated events for a tenant: the history gives them cursors and keeps them, then
   * they go to the bus and are delivered locally, in cursor order. A retried id within the
   * idempotency window is answered with its first acceptance and not delivered again. Rejects
   * with `EventTooLargeError` or `HistoryUnavailableError` (nothing stored or delivered) or
   * `BusUnavailableError` (the history's copy is discarded, so it is delivered nowhere, not even
   * by a hole fill or a resume; see docs/protocol.md).
   */
  async publish(tenant: string, inputs: readonly EventInput[]): Promise<Acceptance[]> {
    const drafts: EventDraft[] = [];
    /** For each input: the index of its draft, or the earlier acceptance it repeats. */
    const slots: (number | Acceptance)[] = [];
    const batchIds = new Map<string, number>();
    const now = new Date(this.#options.clock.now()).toISOString();
    for (const input of inputs) {
      const inBatch = input.id === undefined ? undefined : batchIds.get(input.id);
      const earlier = input.id === undefined || inBatch !== undefined
        ? undefined
        : this.#idempotency.get(tenant, input.id);
      if (inBatch !== undefined || earlier !== undefined) {
        this.#options.metrics.eventsDuplicate.inc();
        slots.push(inBatch ?? earlier!);
        continue;
      }
      if (input.id !== undefined) batchIds.set(input.id, drafts.length);
      slots.push(drafts.length);
      drafts.push({
        tenant,
        type: input.type,
        ...(input.appId !== undefined && { appId: input.appId }),
        ...(input.namespace !== undefined && { namespace: input.namespace }),
        payload: input.payload,
        id: input.id ?? crypto.randomUUID(),
        timestamp: input.timestamp ?? now,
      });
    }
    let stored: StoredEvent[] = [];
    let earlier: ReadonlyMap<string, Acceptance> = new Map();
    if (drafts.length > 0) {
      const keyed = new Set(batchIds.keys());
      const appended = this.#options.history.append(tenant, drafts);
      const previous = this.#routed;
      let done!: () => void;
      this.#routed = new Promise((resolve) => (done = resolve));
      try {
        stored = await appended;
        // Another node may have accepted a keyed id first: answer with its acceptance and
        // deliver once (the copy this node stored in history keeps the same id).
        try {
          earlier = await this.#options.bus.publish(stored.map((entry) => entry.event), keyed);
        } catch (error) {
          // Answered 503: what the history stored must reach nobody, not even by a hole fill.
          this.#discard(tenant, stored.map((entry) => entry.event.seq));
          throw error;
        }
        await previous;
        let published = 0;
        for (const entry of stored) {
          const first = earlier.get(entry.event.id);
          if (first !== undefined) {
            this.#idempotency.remember(tenant, first);
            this.#options.metrics.eventsDuplicate.inc();
            continue;
          }
          if (keyed.has(entry.event.id)) this.#idempotency.remember(tenant, entry.event);
          this.#routeInOrder(entry);
          published++;
        }
        this.#options.metrics.eventsPublished.inc(published);
      } finally {
        await previous;
        done();
      }
    }
    return slots.map((slot) => {
      if (typeof slot !== "number") return slot;
      const event = stored[slot]!.event;
      return earlier.get(event.id) ?? { id: event.id, seq: event.seq };
    });
  }

  /**
   * Subscribes and replays what the client missed after cursor `since`, then continues live:
   * no event twice, none missing at the seam. Live events that arrive while the history is read
   * and the replay is queued are held back, then delivered unless the replay carried them.
   * `announce` runs once the outcome is known and before the first replayed event is queued (the
   * subscribe reply goes there). A cursor the history cannot place answers `recovered: false`.
   * A connection holding only its implicit `*` loses it first; events it already got under
   * `*` are not replayed again.
   */
  async resume(
    client: Client,
    topics: readonly TopicPattern[],
    filter: SubscriptionFilter,
    since: string,
    announce: (outcome: ResumeOutcome) => void,
  ): Promise<SubscribeResult> {
    // Under the implicit `*` every event from the first to the last routed one reached the
    // client already (routing follows cursor order); those are not replayed again.
    const { firstSeq, lastSeq } = client;
    const delivered = client.implicitAll && firstSeq !== null && lastSeq !== null
      ? (seq: string) =>
        (compareCursors(seq, firstSeq) ?? -1) >= 0 && (compareCursors(seq, lastSeq) ?? 1) <= 0
      : () => false;
    for (const topic of topics) {
      const result = this.subscribe(client, topic, filter);
      if (result.state === "limit") return result;
    }
    client.hold();
    const replayed: string[] = [];
    let placed = false;
    try {
      const match = (event: HeraldEvent) =>
        matchesFilter(filter, event) && topics.some((topic) => topicMatches(topic, event.type)) &&
        !delivered(event.seq);
      const outcome = await this.#replay(client, match, since, replayed, announce);
      placed = outcome.recovered;
      this.#options.metrics.resumes.incLabel(outcome.recovered ? "recovered" : outcome.reason);
    } finally {
      // Only a cursor the history placed says what the client has (a client can send any).
      client.release(placed ? since : null, replayed);
    }
    return { state: "subscribed" };
  }

  async #replay(
    client: Client,
    match: (event: HeraldEvent) => boolean,
    since: string,
    replayed: string[],
    announce: (outcome: ResumeOutcome) => void,
  ): Promise<ResumeOutcome> {
    const limit = this.#options.replayLimit;
    let outcome: ResumeOutcome;
    let events: readonly StoredEvent[] = [];
    if (!this.#options.history.shared && this.#options.bus.kind !== "memory") {
      // This node's history holds only what was published on it, not what other nodes
      // published: a replay from it would skip their events without saying so.
      outcome = { recovered: false, replayed: 0, reason: "not_shared" };
      if (!client.closed) announce(outcome);
      return outcome;
    }
    try {
      const page = await this.#options.history.read(client.principal.tenant, {
        since,
        limit,
        match,
      });
      if (page.state === "lost") {
        outcome = { recovered: false, replayed: 0, reason: page.reason };
      } else if (page.truncated) {
        outcome = { recovered: false, replayed: 0, reason: "too_many" };
      } else {
        events = page.events;
        outcome = { recovered: true, replayed: events.length };
      }
    } catch {
      outcome = { recovered: false, replayed: 0, reason: "unavailable" };
    }
    if (client.closed) return outcome;
    announce(outcome);
    for (const { event, frame } of events) {
      if (!(await client.deliverPaced(deliveryOf(event, frame)))) break;
      replayed.push(event.seq);
    }
    return outcome;
  }

  /**
   * Bus receiver: events published on another node. Keyed ids are remembered so a retry that
   * lands on this node is answered with the original acceptance.
   */
  events(events: readonly HeraldEvent[], keyed: ReadonlySet<string>): void {
    this.#options.metrics.eventsReceivedFromBus.inc(events.length);
    for (const event of events) {
      if (keyed.size > 0 && keyed.has(event.id)) this.#idempotency.remember(event.tenant, event);
      this.#routeInOrder({ event, frame: encodeEventFrame(event) });
    }
  }

  /**
   * Bus receiver: this node missed messages. With a shared history the cursor order notices
   * the hole at the next event and fills it from the history, unless the history started a new
   * epoch since; otherwise every client may have missed events and is told.
   */
  gap(_origin: string, missed: number, historyLost = false): void {
    this.#options.metrics.busGaps.inc();
    // Across a new epoch the missed events are gone from the history too: nothing fills them,
    // and which tenants they belonged to is unknown, so every client is told.
    if (this.#order === null || historyLost) this.#lost(null, missed);
  }

  /** `missed` events of `tenant` (of every tenant when null) will never reach clients. */
  #lost(tenant: string | null, missed: number): void {
    this.#options.metrics.eventsDropped.incLabel("bus_gap", missed);
    for (const client of this.#clients) {
      if (tenant === null || client.principal.tenant === tenant) client.noteLost(missed);
    }
  }

  #routeInOrder(entry: StoredEvent): void {
    if (this.#order === null) this.#route(entry.event, entry.frame);
    else this.#order.accept(entry);
  }

  /**
   * Makes sure events the history stored but the bus refused are never delivered: this node's
   * cursor order skips them, and the history marks them discarded (retried until it answers),
   * so another node filling a hole skips them too and a resume does not replay them.
   */
  #discard(tenant: string, seqs: readonly string[]): void {
    if (this.#order === null) return;
    for (const seq of seqs) this.#order.discard(tenant, seq);
    const history = this.#options.history;
    if (history.discard === undefined) return;
    void (async () => {
      for (let attempt = 0; attempt < DISCARD_ATTEMPTS; attempt++) {
        try {
          return await history.discard!(tenant, seqs);
        } catch {
          await this.#options.clock.sleep(Math.min(100 * 2 ** attempt, 2000));
        }
      }
    })();
  }

  /** Reads the stored events a hole in the cursor order is missing. */
  async #fill(tenant: string, after: string, count: number): Promise<Fill> {
    try {
      const page = await this.#options.history.read(tenant, { since: after, limit: count });
      return page.state === "ok" ? { state: "ok", events: page.events } : { state: "lost" };
    } catch {
      return { state: "unavailable" };
    }
  }

  /** Closes every client (shutdown). */
  closeAll(disconnect: Disconnect): void {
    for (const client of [...this.#clients]) client.close(disconnect);
  }

  #route(event: HeraldEvent, frame: string): void {
    if (!this.#options.state.apply(event)) {
      this.#options.metrics.statusUnchanged.inc();
      return;
    }
    const index = this.#indexes.get(event.tenant);
    if (index === undefined || index.size === 0) return;
    const delivery = deliveryOf(event, frame);
    const eventNo = ++this.#eventNo;
    index.match(event.type, event.appId, event.namespace, (subscription) => {
      const client = subscription.owner;
      if (client.lastEventNo === eventNo) return;
      client.lastEventNo = eventNo;
      client.route(delivery);
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
