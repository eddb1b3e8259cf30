/**
 * The hub: accepts events, gives them ids and cursors, and routes each one to the clients
 * whose subscriptions match, on this node and (through the bus) on every other.
 * @module
 */

import { DISCONNECT, type Disconnect, LAG_REASONS } from "../events/codes.ts";
import { type Dialect, dorguNamespace, encodeIn } from "../events/dialects.ts";
import { encodeEventFrame, type EventInput, type HeraldEvent } from "../events/envelope.ts";
import type { SubscriptionFilter } from "../events/messages.ts";
import type { TopicPattern } from "../events/topic.ts";
import type { Bus, BusReceiver, DirectedMessage } from "./bus/bus.ts";
import { Client, type ClientLimits, type ClientSubscription } from "./client.ts";
import { mayHold, type Principal, type Reauthorize } from "./principal.ts";
import type { Clock } from "./clock.ts";
import { type EventDraft, type History, parseCursor, type StoredEvent } from "./history/history.ts";
import { type Acceptance, IdempotencyWindow } from "./idempotency.ts";
import type { Metrics } from "./metrics.ts";
import { filtersOf, SubscriptionIndex } from "./subscriptions.ts";
import type { Transport } from "./transport.ts";
import { CursorOrder, type Fill } from "./cursor_order.ts";
import { QuietCursors } from "./quiet.ts";
import { resume, type ResumeDeps, type ResumeOutcome } from "./resume.ts";

/**
 * An event's delivery in one dialect, built once and shared by every client it goes to in that
 * dialect: the frame (`heraldFrame`, serialized once already, or the dialect's view of the
 * event), the conflation key (dialect, type and appId) and the cursor.
 */
function deliveryOf(event: HeraldEvent, heraldFrame: string, dialect: Dialect) {
  return {
    frame: encodeIn(dialect, event, heraldFrame),
    type: event.type,
    key: `${dialect}\u0000${event.type}\u0000${event.appId ?? ""}`,
    seq: event.seq,
  };
}

/** How a subscription is framed, and the topic name its client unsubscribes with. */
export interface SubscriptionView {
  readonly dialect: Dialect;
  /** The topic as the client named it (a dorgu topic); the pattern itself when absent. */
  readonly name?: string;
}

const HERALD_VIEW: SubscriptionView = { dialect: "herald" };

/** True when `who` may hold every subscription `client` has. */
function holdsAll(client: Client, who: Principal): boolean {
  for (const { topic, filters: { userId, sessionId } } of client.subscriptions.values()) {
    const filter = {
      ...(userId !== null && { userId }),
      ...(sessionId !== null && { sessionId }),
    };
    if (!mayHold(who, topic, filter)) return false;
  }
  return true;
}

/** Something fed every routed event, in cursor order, on every node. */
export interface EventConsumer {
  /** Folds `event` in; false when it changes nothing anyone should see (it is not broadcast). */
  apply(event: HeraldEvent): boolean;
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
  /**
   * Fed every routed event in cursor order (live state); any of them may keep an event from
   * being broadcast, live and in replays alike.
   */
  readonly consumers: readonly EventConsumer[];
  /** Quiet cursors remembered per tenant; the history's retention in events. */
  readonly quietMax: number;
  /** With a shared history: how long an event may wait for an earlier cursor (see CursorOrder). */
  readonly reorderWaitMs: number;
  /** With a shared history: events one tenant may hold waiting before the hole is filled. */
  readonly reorderMaxPending: number;
}

/** Outcome of subscribing. */
export type SubscribeResult =
  | { readonly state: "subscribed" }
  | { readonly state: "limit"; readonly max: number };

/** Routes events to clients. */
export class Hub implements BusReceiver {
  readonly #options: HubOptions;
  readonly #indexes = new Map<string, SubscriptionIndex<Client, ClientSubscription>>();
  readonly #clients = new Set<Client>();
  readonly #idempotency: IdempotencyWindow;
  #eventNo = 0;
  /** Settles when the previous publish has routed its events: routing follows cursor order. */
  #routed: Promise<void> = Promise.resolve();
  /** With a shared history, events of every node are routed through it in cursor order. */
  readonly #order: CursorOrder | null;
  readonly #resumeDeps: ResumeDeps;
  readonly #quiet: QuietCursors;
  #onMessage: ((from: string, message: DirectedMessage) => void) | null = null;
  /** The last credential change applied (see `reauthorize`); null until one happens. */
  #latestCredentials: Reauthorize | null = null;

  constructor(options: HubOptions) {
    this.#options = options;
    this.#quiet = new QuietCursors(options.quietMax);
    this.#resumeDeps = {
      history: options.history,
      multiNode: options.bus.kind !== "memory",
      replayLimit: options.replayLimit,
      deliveryOf: ({ event, frame }) => deliveryOf(event, frame, "herald"),
      quiet: (event) => this.#quiet.has(event.tenant, event.seq),
      count: (outcome) =>
        options.metrics.resumes.incLabel(outcome.recovered ? "recovered" : outcome.reason),
    };
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
      "herald_bus_lag_seconds",
      "How far behind the bus this node reads (redis bus only; 0 once caught up).",
      () => (options.bus.lagMs ?? 0) / 1000,
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

  /**
   * Opens the history, rebuilds state from what it retains (a durable history survives
   * restarts), then starts the bus. Call once before serving.
   */
  async start(): Promise<void> {
    const { history } = this.#options;
    await history.start();
    for (const tenant of await history.tenants()) {
      const page = await history.read(tenant, { since: null, limit: Number.MAX_SAFE_INTEGER });
      if (page.state !== "ok") continue;
      for (const stored of page.events) this.#fold(stored.event);
      const last = page.events.at(-1);
      const cursor = last === undefined ? null : parseCursor(last.event.seq);
      if (cursor !== null) this.#order?.startAfter(tenant, cursor.epoch, cursor.n);
    }
    await this.#options.bus.start(this);
  }

  /** One close callback for every client, instead of a closure each. */
  readonly #onClientClose = (client: Client): void => this.#forget(client);

  /** Registers a connected client. */
  connect(transport: Transport, principal: Principal, transportName: string): Client {
    const client = new Client(transport, principal, transportName, {
      limits: this.#options.limits,
      clock: this.#options.clock,
      metrics: this.#options.metrics,
      onClose: this.#onClientClose,
    });
    this.#clients.add(client);
    this.#options.metrics.connectionsOpened.incLabel(transportName);
    return client;
  }

  /**
   * Adds a subscription, framed in `view.dialect`. The first explicit subscription of a client
   * that connected without a topic replaces its implicit `*`.
   */
  subscribe(
    client: Client,
    topic: TopicPattern,
    filter: SubscriptionFilter,
    view: SubscriptionView = HERALD_VIEW,
  ): SubscribeResult {
    return this.subscribeAll(client, [topic], filter, view);
  }

  /**
   * Subscribes to every one of `topics` (the patterns a dorgu topic stands for), or to none of
   * them when they would pass the subscription limit.
   */
  subscribeAll(
    client: Client,
    topics: readonly TopicPattern[],
    filter: SubscriptionFilter,
    view: SubscriptionView = HERALD_VIEW,
  ): SubscribeResult {
    if (client.seam.implicitAll) {
      client.seam.leaveImplicitAll();
      this.#removeAll(client);
    }
    const added = new Map<string, ClientSubscription>();
    // dorgu filters on its namespace of the event (the payload's), not the envelope's.
    const dorgu = view.dialect === "dorgu";
    const dorguNamespace = dorgu ? filter.namespace ?? null : null;
    // One filters object for every topic of this subscribe.
    const { namespace: _dorguOwn, ...envelopeFilter } = filter;
    const filters = filtersOf(dorgu ? envelopeFilter : filter);
    for (const topic of topics) {
      const subscription: ClientSubscription = {
        owner: client,
        topic,
        filters,
        dorguNamespace,
        dialect: view.dialect,
        name: view.name ?? topic.topic,
      };
      const key = [
        topic.topic,
        subscription.dialect,
        subscription.name,
        filter.appId,
        filter.namespace,
        filter.userId,
        filter.sessionId,
      ].join("\u0000");
      if (!client.subscriptions.has(key)) added.set(key, subscription);
    }
    const max = this.#options.maxSubscriptions;
    if (client.subscriptions.size + added.size > max) return { state: "limit", max };
    const index = this.#indexFor(client.principal.tenant);
    for (const [key, subscription] of added) {
      client.subscriptions.set(key, subscription);
      index.add(subscription);
    }
    return { state: "subscribed" };
  }

  /**
   * Subscribes a client that just connected to `topics` with `filter`. `implicit`: it named no
   * topic and got `*`, which its first explicit subscribe replaces.
   */
  subscribeInitial(
    client: Client,
    topics: readonly TopicPattern[],
    filter: SubscriptionFilter,
    implicit: boolean,
    view: SubscriptionView = HERALD_VIEW,
  ): void {
    for (const topic of topics) this.subscribe(client, topic, filter, view);
    if (implicit) client.seam.enterImplicitAll();
  }

  /**
   * Removes every subscription of the client to `topic` (a pattern, or the dorgu topic it was
   * named by), whatever its filters.
   */
  unsubscribe(client: Client, topic: string): number {
    const index = this.#indexes.get(client.principal.tenant);
    let removed = 0;
    for (const [key, subscription] of client.subscriptions) {
      if (subscription.name !== topic) continue;
      client.subscriptions.delete(key);
      index?.remove(subscription);
      removed++;
    }
    if (removed > 0) client.seam.leaveImplicitAll();
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
        ...(input.userId !== undefined && { userId: input.userId }),
        ...(input.sessionId !== undefined && { sessionId: input.sessionId }),
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
   * Subscribes and replays what the client missed after cursor `since`, then continues live
   * (see `resume.ts`). `announce` runs once the outcome is known and before the first replayed
   * event is queued (the subscribe reply goes there). A connection holding only its implicit
   * `*` loses it first; events it already got under `*` are not replayed again. `implicit`:
   * the client just connected without a topic and keeps `*` until its first explicit subscribe.
   * Replayed events are framed in `view.dialect`, like the live ones that follow.
   */
  async resume(
    client: Client,
    topics: readonly TopicPattern[],
    filter: SubscriptionFilter,
    since: string,
    announce: (outcome: ResumeOutcome) => void,
    implicit = false,
    view: SubscriptionView = HERALD_VIEW,
  ): Promise<SubscribeResult> {
    const delivered = client.seam.delivered();
    const result = this.subscribeAll(client, topics, filter, view);
    if (result.state === "limit") return result;
    if (implicit) client.seam.enterImplicitAll();
    // A replay is one client's: a dialect's frames are encoded for it, once per replayed event.
    const deps = view.dialect === "herald" ? this.#resumeDeps : {
      ...this.#resumeDeps,
      deliveryOf: ({ event, frame }: StoredEvent) => deliveryOf(event, frame, view.dialect),
    };
    const { namespace, ...others } = filter;
    if (view.dialect === "dorgu" && namespace !== undefined) {
      // As live: dorgu's namespace of the event (the payload's), not the envelope's.
      const inNamespace = (event: HeraldEvent) => dorguNamespace(event) === namespace;
      await resume(
        { ...deps, matches: inNamespace },
        client,
        topics,
        others,
        since,
        announce,
        delivered,
      );
    } else {
      await resume(deps, client, topics, filter, since, announce, delivered);
    }
    return { state: "subscribed" };
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
   * Bus receiver: a message another node addressed to this one, handed to the handler set with
   * {@linkcode Hub.onMessage} (the agents feature); dropped while none is set.
   */
  message(from: string, message: DirectedMessage): void {
    this.#onMessage?.(from, message);
  }

  /** Sets the handler of directed messages to this node. */
  onMessage(handler: (from: string, message: DirectedMessage) => void): void {
    this.#onMessage = handler;
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
    this.#options.metrics.eventsDropped.incLabel(LAG_REASONS.busGap, missed);
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

  /**
   * Applies changed credentials (a tokens file reload) to every connection, in one pass over
   * the connections and never per event: one whose credential was revoked is closed with 4001
   * (`token revoked`); one whose credential now names another tenant, or no longer allows one
   * of its subscriptions, with 4001 (`token no longer allows this connection`); any other takes
   * the new principal (a narrower `publish:` scope applies from its next publish). Counts the
   * closes in `herald_revoked_connections_total{transport}` and returns how many there were.
   */
  reauthorize(reauthorize: Reauthorize): number {
    this.#latestCredentials = reauthorize;
    let closed = 0;
    for (const client of [...this.#clients]) {
      if (this.#reauthorizeOne(client, reauthorize)) closed++;
    }
    return closed;
  }

  /**
   * Applies the latest credential change to a client that just connected and subscribed: it
   * was authenticated before registering, so a reload in between would have missed it.
   */
  recheck(client: Client): void {
    if (this.#latestCredentials !== null && !client.closed) {
      this.#reauthorizeOne(client, this.#latestCredentials);
    }
  }

  /** True when the change closed `client`. */
  #reauthorizeOne(client: Client, reauthorize: Reauthorize): boolean {
    const before = client.principal;
    const after = reauthorize(before);
    if (after === before) return false;
    const disconnect = after === null
      ? DISCONNECT.tokenRevoked
      : after.tenant !== before.tenant || !holdsAll(client, after)
      ? DISCONNECT.tokenNarrowed
      : null;
    if (disconnect === null) {
      client.principal = after!;
      return false;
    }
    client.close(disconnect);
    this.#options.metrics.revokedConnections.incLabel(client.transportName);
    return true;
  }

  /** Closes every client (shutdown). */
  closeAll(disconnect: Disconnect): void {
    for (const client of [...this.#clients]) client.close(disconnect);
  }

  #route(event: HeraldEvent, frame: string): void {
    if (!this.#fold(event)) {
      this.#options.metrics.statusUnchanged.inc();
      return;
    }
    const index = this.#indexes.get(event.tenant);
    if (index === undefined || index.size === 0) return;
    // Each dialect's frame is built at most once per event, when a subscription first needs it.
    const deliveries: Partial<Record<Dialect, ReturnType<typeof deliveryOf>>> = {};
    const eventNo = ++this.#eventNo;
    index.match(event, (subscription) => {
      const client = subscription.owner;
      const dialect = subscription.dialect;
      if (
        subscription.dorguNamespace !== null &&
        dorguNamespace(event) !== subscription.dorguNamespace
      ) return;
      if (client.lastEventNo[dialect] === eventNo) return;
      client.lastEventNo[dialect] = eventNo;
      client.route(deliveries[dialect] ??= deliveryOf(event, frame, dialect));
    });
  }

  /** Feeds the consumers; false (and remembered) when one of them keeps the event quiet. */
  #fold(event: HeraldEvent): boolean {
    let broadcast = true;
    for (const consumer of this.#options.consumers) {
      if (!consumer.apply(event)) broadcast = false;
    }
    if (!broadcast) this.#quiet.add(event.tenant, event.seq);
    return broadcast;
  }

  #indexFor(tenant: string): SubscriptionIndex<Client, ClientSubscription> {
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
