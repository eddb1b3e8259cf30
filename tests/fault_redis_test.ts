/**
 * Fault injection with real `redis-server` processes under hubs that use Redis for both the bus
 * and the history: Redis restarted without persistence, with an append-only file, and crashed
 * back to an older RDB snapshot; Redis frozen so commands time out while their sockets stay
 * open. Producers publish during the outage and retry refused events with the same id; every
 * client (WebSocket and SSE, on every node) is checked against what producers were told: each
 * event answered 202 arrives exactly once, an event only ever answered 503 arrives nowhere,
 * and a resume across a restart answers `recovered: false` with reason `epoch`.
 */

import assert from "node:assert/strict";
import {
  type Frame,
  type HubProcess,
  redisMissing,
  type RedisOptions,
  type RedisServer,
  spawnHub,
  startRedis,
  TestClient,
  waitFor,
} from "./_harness.ts";
import { getFresh, publishFresh, waitReady } from "./_fanout.ts";
import { SseReader } from "./_sse.ts";
import { isSubscribed } from "./_resume.ts";

const missing = redisMissing();
if (missing !== null) console.warn(`Skipping the Redis fault-injection tests: ${missing}`);
const ignore = missing !== null;

/** Redis timeouts short enough that a frozen Redis answers 503 quickly. */
const TIMEOUT_MS = "600";

async function faultHubs(redis: RedisServer, count: number): Promise<HubProcess[]> {
  const hubs = await Promise.all(
    Array.from({ length: count }, () =>
      spawnHub({
        HERALD_BUS: "redis",
        HERALD_HISTORY: "redis",
        HERALD_REDIS_URL: redis.url,
        HERALD_REDIS_RECONNECT_MIN_MS: "50",
        HERALD_REDIS_RECONNECT_MAX_MS: "200",
        HERALD_HISTORY_TIMEOUT_MS: TIMEOUT_MS,
        HERALD_BUS_PUBLISH_TIMEOUT_MS: TIMEOUT_MS,
        HERALD_REORDER_WAIT_MS: "100",
      })),
  );
  for (const hub of hubs) await waitReady(hub.url);
  return hubs;
}

/** Every client of the suite: a WebSocket and an SSE stream per node. */
interface Watchers {
  readonly ws: TestClient[];
  readonly sse: SseReader[];
  /** What each client received, as event frames. */
  streams(): { who: string; events: Frame[] }[];
  close(): Promise<void>;
}

async function watch(hubs: readonly HubProcess[]): Promise<Watchers> {
  const ws = await Promise.all(hubs.map((hub) => TestClient.connect(hub.wsUrl)));
  const sse = await Promise.all(hubs.map((hub) => SseReader.open(`${hub.url}/events/stream`)));
  for (const stream of sse) await waitFor(() => stream.comments.length > 0, "SSE opening comment");
  return {
    ws,
    sse,
    streams: () => [
      ...ws.map((client, index) => ({ who: `ws@node${index}`, events: client.events })),
      ...sse.map((stream, index) => ({
        who: `sse@node${index}`,
        events: stream.events.map((message) => message.data as Frame),
      })),
    ],
    close: async () => {
      for (const client of ws) await client.close();
      for (const stream of sse) await stream.close();
    },
  };
}

/** What producers were told, per event id. */
class Ledger {
  readonly accepted = new Map<string, string>();
  readonly refused = new Set<string>();

  /** Publishes once; records 202 (with its seq) or 503. */
  async publish(hub: HubProcess, id: string): Promise<number> {
    let response: Response;
    try {
      response = await publishFresh(hub.url, { type: "fault.step", id, payload: { id } });
    } catch {
      this.refused.add(id);
      return 0;
    }
    const body = await response.json();
    if (response.status === 202) this.accepted.set(id, body.accepted[0].seq);
    else {
      assert.equal(response.status, 503, `publish ${id}: ${JSON.stringify(body)}`);
      this.refused.add(id);
    }
    return response.status;
  }

  /** Publishes with the same id until it is accepted. */
  async until(hub: HubProcess, id: string): Promise<void> {
    await waitFor(async () => (await this.publish(hub, id)) === 202, `${id} accepted`, 20_000);
  }

  /**
   * Asserts every stream holds every accepted id exactly once and no id that was only ever
   * refused, after a marker published last has arrived everywhere.
   */
  async check(hubs: readonly HubProcess[], watchers: Watchers): Promise<void> {
    const marker = `marker-${crypto.randomUUID()}`;
    await this.until(hubs[0]!, marker);
    const streamOf = (who: string) => watchers.streams().find((s) => s.who === who)!.events;
    for (const { who } of watchers.streams()) {
      await waitFor(
        () => streamOf(who).some((event) => event.id === marker),
        `the marker at ${who}`,
        10_000,
      );
      const current = streamOf(who);
      const counts = new Map<string, number>();
      for (const event of current) counts.set(event.id, (counts.get(event.id) ?? 0) + 1);
      const duplicates = [...counts].filter(([, count]) => count > 1).map(([id]) => id);
      assert.deepEqual(duplicates, [], `${who} received duplicates`);
      const lost = [...this.accepted.keys()].filter((id) => !counts.has(id));
      assert.deepEqual(lost, [], `${who} lost events that were answered 202`);
      const ghosts = [...this.refused].filter((id) => !this.accepted.has(id) && counts.has(id));
      assert.deepEqual(ghosts, [], `${who} received events that were only answered 503`);
    }
  }
}

/** The epoch of a cursor. */
const epochOf = (seq: string) => seq.slice(0, seq.lastIndexOf("-"));

async function waitAllReady(hubs: readonly HubProcess[]): Promise<void> {
  for (const hub of hubs) await waitReady(hub.url, 20_000);
}

/** What a two-node fault scenario works with. */
interface TwoNodes {
  readonly redis: RedisServer;
  readonly hubs: HubProcess[];
  readonly watchers: Awaited<ReturnType<typeof watch>>;
  readonly ledger: Ledger;
}

/** Runs `scenario` on two hubs sharing a fresh Redis, each watched, and stops them after. */
async function onTwoNodes(
  options: RedisOptions,
  scenario: (nodes: TwoNodes) => Promise<void>,
): Promise<void> {
  await using redis = await startRedis(options);
  const hubs = await faultHubs(redis, 2);
  const watchers = await watch(hubs);
  try {
    await scenario({ redis, hubs, watchers, ledger: new Ledger() });
  } finally {
    await watchers.close();
    for (const hub of hubs) await hub.stop();
  }
}

/**
 * Publishes before a restart, during it and after it on two nodes, then checks every stream,
 * a resume across the restart, and that both nodes count in one new epoch from 1.
 */
async function restartScenario(
  options: RedisOptions,
  restart: (redis: RedisServer, publish: (id: string) => Promise<void>) => Promise<void>,
): Promise<void> {
  await onTwoNodes(options, async ({ redis, hubs, watchers, ledger }) => {
    for (let n = 1; n <= 3; n++) await ledger.until(hubs[n % 2]!, `pre-${n}`);
    const lastBefore = ledger.accepted.get("pre-3")!;
    await restart(redis, (id) => ledger.until(hubs[0]!, id));
    // Publishes while Redis is back but nodes may not be ready yet: 202 or 503, nothing else.
    for (let n = 1; n <= 4; n++) await ledger.publish(hubs[n % 2]!, `during-${n}`);
    await waitAllReady(hubs);
    for (let n = 1; n <= 4; n++) await ledger.until(hubs[n % 2]!, `post-${n}`);
    // Retries of every refused id, with the same id: each must end up delivered exactly once.
    for (const id of [...ledger.refused]) await ledger.until(hubs[0]!, id);
    await ledger.check(hubs, watchers);

    const after = ["post-1", "post-2", "post-3", "post-4"].map((id) => ledger.accepted.get(id)!);
    assert.equal(new Set(after.map(epochOf)).size, 1, "both nodes agree on one epoch");
    assert.notEqual(epochOf(after[0]!), epochOf(lastBefore), "a restart starts a new epoch");
    const seqs = [...ledger.accepted.values()].filter((seq) => epochOf(seq) === epochOf(after[0]!));
    assert.equal(new Set(seqs).size, seqs.length, "no cursor handed out twice");

    for (const hub of hubs) {
      await using resumed = await TestClient.connect(`${hub.wsUrl}?since=${lastBefore}`);
      const reply = await resumed.waitForFrame(isSubscribed, "subscribed reply");
      assert.deepEqual(
        [reply.payload.recovered, reply.payload.reason],
        [false, "epoch"],
        "a resume across the restart is not reported as recovered",
      );
    }
    const history = await getFresh(`${hubs[1]!.url}/history?since=${lastBefore}`);
    assert.equal(history.status, 200);
    assert.equal(JSON.parse(history.text).recovered, false);
  });
}

Deno.test({
  name: "Redis restarted without persistence: a new epoch, nothing lost, nothing twice",
  ignore,
  fn: () =>
    restartScenario({}, async (redis) => {
      await redis.stop();
      await redis.start();
    }),
});

Deno.test({
  name: "Redis restarted with an append-only file: a new epoch, nothing lost, nothing twice",
  ignore,
  fn: () =>
    restartScenario({ persistence: "aof" }, async (redis) => {
      await redis.stop();
      await redis.start();
    }),
});

Deno.test({
  name: "Redis crashed back to an older RDB snapshot: no cursor is reused",
  ignore,
  fn: () =>
    restartScenario({ persistence: "rdb" }, async (redis, publish) => {
      // The snapshot holds the epoch and an older head; what was accepted after it is lost
      // from Redis (clients got it live), and its cursors must not be handed out again.
      assert.equal(await redis.cli("SAVE"), "OK");
      for (let n = 1; n <= 3; n++) await publish(`unsaved-${n}`);
      await redis.crash();
      await redis.start();
    }),
});

Deno.test({
  name: "Redis down: a publish answered 503 is delivered nowhere, and its retry exactly once",
  ignore,
  fn: () =>
    onTwoNodes({ persistence: "aof" }, async ({ redis, hubs, watchers, ledger }) => {
      await ledger.until(hubs[0]!, "before");
      await redis.stop();
      for (const hub of hubs) {
        await waitFor(
          async () => (await getFresh(`${hub.url}/ready`)).status === 503,
          "/ready to answer 503 while Redis is down",
        );
      }
      // Sent while Redis is down: refused, and must not be stored when Redis returns.
      assert.equal(await ledger.publish(hubs[0]!, "outage-1"), 503);
      assert.equal(await ledger.publish(hubs[1]!, "outage-2"), 503);
      await redis.start();
      await waitAllReady(hubs);
      await ledger.until(hubs[1]!, "after");
      // The refused events did not surface after the restart...
      await ledger.check(hubs, watchers);
      // ...and their retries are delivered once each.
      await ledger.until(hubs[1]!, "outage-1");
      await ledger.until(hubs[0]!, "outage-2");
      await ledger.check(hubs, watchers);
    }),
});

Deno.test({
  name: "Redis frozen: a command that timed out does not run when Redis wakes up",
  ignore,
  fn: () =>
    onTwoNodes({}, async ({ redis, hubs, watchers, ledger }) => {
      try {
        await ledger.until(hubs[0]!, "before");
        redis.pause();
        // The socket stays open, so the command is written and waits in Redis' input buffer.
        const refused = await Promise.all([
          ledger.publish(hubs[0]!, "frozen-1"),
          ledger.publish(hubs[1]!, "frozen-2"),
        ]);
        assert.deepEqual(refused, [503, 503]);
        redis.unpause();
        await waitAllReady(hubs);
        await ledger.until(hubs[1]!, "after-1");
        await ledger.until(hubs[0]!, "after-2");
        await ledger.check(hubs, watchers);
        await ledger.until(hubs[1]!, "frozen-1");
        await ledger.until(hubs[0]!, "frozen-2");
        await ledger.check(hubs, watchers);
      } finally {
        redis.unpause();
      }
    }),
});

Deno.test({
  name: "the bus refuses after the history stored the event: 503, and no hole fill delivers it",
  ignore,
  fn: () =>
    onTwoNodes({}, async ({ redis, hubs, watchers, ledger }) => {
      await ledger.until(hubs[0]!, "before");
      // The bus stream key of the wrong type: the bus script fails, the history script does not.
      await redis.cli("DEL", "herald:bus");
      await redis.cli("SET", "herald:bus", "not a stream");
      assert.equal(await ledger.publish(hubs[0]!, "refused-1"), 503);
      assert.equal(await ledger.publish(hubs[1]!, "refused-2"), 503);
      await redis.cli("DEL", "herald:bus");
      await waitAllReady(hubs);
      // Later cursors open a hole where the refused events are stored: it must not be filled.
      await ledger.until(hubs[1]!, "after-1");
      await ledger.until(hubs[0]!, "after-2");
      await ledger.check(hubs, watchers);
      await ledger.until(hubs[1]!, "refused-1");
      await ledger.until(hubs[0]!, "refused-2");
      await ledger.check(hubs, watchers);
      // A resume from before the refusals skips their discarded cursors without a gap.
      await using resumed = await TestClient.connect(
        `${hubs[1]!.wsUrl}?since=${ledger.accepted.get("before")}`,
      );
      const reply = await resumed.waitForFrame(isSubscribed, "subscribed reply");
      assert.equal(reply.payload.recovered, true);
      // The replay follows the reply: wait for as many events as the reply says it carries.
      const replayed = (await resumed.waitForEvents(reply.payload.replayed as number)).map((
        event,
      ) => event.id);
      assert.deepEqual(replayed.filter((id) => id.startsWith("refused")).sort(), [
        "refused-1",
        "refused-2",
      ]);
    }),
});

Deno.test({
  name: "a node that missed events before Redis lost them tells its clients, never silently",
  ignore,
  async fn() {
    await using redis = await startRedis();
    const [live, frozen] = await faultHubs(redis, 2) as [HubProcess, HubProcess];
    const liveWatchers = await watch([live]);
    const behind = await TestClient.connect(frozen.wsUrl);
    const ledger = new Ledger();
    try {
      await ledger.until(live, "before");
      await behind.waitForFrame((frame) => frame.id === "before", "the first event on node 2");
      // Node 2 stops reading; node 1 accepts events; then Redis restarts without persistence,
      // so the stream entries node 2 never read and their history are both gone.
      frozen.child.kill("SIGSTOP");
      for (let n = 1; n <= 3; n++) await ledger.until(live, `unseen-${n}`);
      await redis.stop();
      await redis.start();
      frozen.child.kill("SIGCONT");
      await waitAllReady([live, frozen]);
      await ledger.until(live, "after");
      await ledger.check([live], liveWatchers);
      // Node 2's client reads at most what was already in its socket (one XREAD reply): what it
      // lacks can come from nowhere, so it must be told (close code 4009 by default).
      const told = () =>
        behind.closeEvent?.code === 4009 || behind.frames.some((frame) => frame.type === "lagged");
      await waitFor(
        () => told() || behind.events.some((event) => event.id === "after"),
        "node 2's client to get the last event or be told it lost some",
        10_000,
      );
      const got = new Set(behind.events.map((event) => event.id as string));
      const lacking = [...ledger.accepted.keys()].filter((id) => id !== "after" && !got.has(id));
      assert.ok(lacking.length > 0, "the scenario did not make node 2 miss anything");
      await waitFor(told, `node 2's client to be told it lacks ${lacking.join(", ")}`, 5000);
    } finally {
      frozen.child.kill("SIGCONT");
      await behind.close();
      await liveWatchers.close();
      await live.stop();
      await frozen.stop();
    }
  },
});
