/**
 * The client's behaviour against real hub processes, written once and run twice: in Deno
 * (`client_test.ts`) and in Chromium (`browser_client_test.ts`). A scenario drives the client
 * through a {@linkcode ClientDriver} and controls the hubs itself: stops and restarts them,
 * pauses one with SIGSTOP, and decides through a TCP proxy when the client gets back in.
 * @module
 */

import assert from "node:assert/strict";
import {
  type HubProcess,
  publishSeqs,
  publishTo,
  readMetrics,
  spawnHub,
  TEST_TOKEN,
  waitFor,
} from "./_harness.ts";
import type { RecordedItem, RecorderOptions, RecorderView } from "./_client_recorder.ts";
import { startProxy } from "./_tcp_proxy.ts";

/** The client under test, wherever it runs. Every call crosses into its runtime. */
export interface ClientDriver {
  start(url: string, options: RecorderOptions): Promise<void>;
  /** Subscribes and waits until the hub confirmed it. */
  subscribe(
    name: string,
    topic: string,
    options?: { appId?: string; snapshot?: boolean },
  ): Promise<void>;
  unsubscribe(name: string): Promise<void>;
  publish(events: { type: string; appId?: string; payload?: Record<string, string> }[]): Promise<
    string[]
  >;
  view(): Promise<RecorderView>;
  /** Fires `online` on the client's global scope. */
  wake(): Promise<void>;
  close(): Promise<void>;
}

/** A scenario: a name and what it does with a fresh driver. */
export interface ClientScenario {
  readonly name: string;
  run(driver: ClientDriver): Promise<void>;
}

const step = (n: number, appId = "web") => ({
  type: "deploy.step",
  appId,
  payload: { step: `s${n}`, status: "running" },
});

const via = (hub: HubProcess) => ({ publish: (body: unknown) => publishTo(hub.url, body) });

/** Waits until subscription `name` recorded items satisfying `done`, and returns them. */
async function itemsOf(
  driver: ClientDriver,
  name: string,
  done: (items: RecordedItem[]) => boolean,
  what: string,
): Promise<RecordedItem[]> {
  let last: RecordedItem[] = [];
  try {
    return await waitFor(
      async () => {
        last = (await driver.view()).items[name] ?? [];
        return done(last) ? last : null;
      },
      what,
      15_000,
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; items: ${JSON.stringify(last)}`);
  }
}

const eventsIn = (items: RecordedItem[]) =>
  items.filter((item): item is Extract<RecordedItem, { kind: "event" }> => item.kind === "event");

/**
 * Waits until subscription `name` was resumed on a new connection: the hub has it again, so an
 * event published now is live, not part of the replay. An open connection alone does not mean
 * that: the subscribe is still on its way, and an event published before it arrives is replayed.
 */
async function resumedOn(driver: ClientDriver, name: string, what: string): Promise<void> {
  await itemsOf(driver, name, (items) => items.some((item) => item.kind === "resumed"), what);
}

async function waitForState(driver: ClientDriver, state: string, what: string) {
  return await waitFor(
    async () => {
      const view = await driver.view();
      return view.connectionState === state ? view : null;
    },
    what,
    15_000,
  );
}

async function kvEnv(): Promise<{ env: Record<string, string>; dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "herald-client-kv-" });
  return { env: { HERALD_HISTORY: "kv", HERALD_KV_PATH: `${dir}/history.sqlite` }, dir };
}

export const CLIENT_SCENARIOS: readonly ClientScenario[] = [
  {
    name:
      "reconnects through a hub restart, asking getToken each attempt, and resumes without loss or duplicate",
    async run(driver) {
      const { env, dir } = await kvEnv();
      try {
        await using first = await spawnHub(env);
        await using proxy = startProxy(first.port);
        // The first token is wrong: the hub refuses the handshake and the client asks again.
        await driver.start(proxy.url, { tokens: ["wrong-token", TEST_TOKEN] });
        await driver.subscribe("web", "deploy.*", { appId: "web" });
        let view = await driver.view();
        assert.equal(view.opens, 1);
        assert.ok(view.tokenCalls >= 2, `getToken per attempt: ${view.tokenCalls}`);
        assert.deepEqual(view.states.slice(0, 2), ["connecting", "reconnecting"]);

        const live = await driver.publish([step(1), step(2, "api"), step(3)]);
        await itemsOf(driver, "web", (items) => eventsIn(items).length === 2, "2 live events");

        const closesBefore = view.closes.length;
        assert.equal((await first.stop()).code, 0);
        proxy.refuse();
        view = await waitForState(driver, "reconnecting", "the client to notice the restart");
        assert.deepEqual(view.closes[closesBefore], {
          code: 1001,
          reason: "server shutting down",
          by: "hub",
          reconnect: true,
        });
        const tokensBefore = view.tokenCalls;

        // A new process on the same history; the client is kept out while these are published.
        await using second = await spawnHub(env);
        const missed = await publishSeqs(via(second), [step(4), step(5, "api"), step(6)]);
        proxy.up(second.port);
        await resumedOn(driver, "web", "the client to reconnect and resume");
        const after = await driver.publish([step(7)]);
        const items = await itemsOf(
          driver,
          "web",
          (items) => eventsIn(items).length === 5,
          "5 events",
        );
        assert.deepEqual(
          items.map((item) => item.kind === "event" ? item.seq : item),
          [live[0], live[2], { kind: "resumed", replayed: 2 }, missed[0], missed[2], after[0]],
        );
        view = await driver.view();
        assert.equal(view.opens, 2);
        assert.ok(view.tokenCalls > tokensBefore, "getToken was asked again to reconnect");
        assert.equal(view.duplicates, 0, "the hub sent nothing twice");
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  },
  {
    name: "a hub that cannot resume (new epoch) gets a snapshot, then the events after it",
    async run(driver) {
      await using first = await spawnHub();
      await using proxy = startProxy(first.port);
      await driver.start(proxy.url, { tokens: [TEST_TOKEN] });
      await driver.subscribe("web", "deploy.*", { appId: "web" });
      const live = await driver.publish([step(1), step(2)]);
      await itemsOf(driver, "web", (items) => eventsIn(items).length === 2, "2 live events");
      await first.stop();
      proxy.refuse();
      await waitForState(driver, "reconnecting", "the client to notice the restart");
      // Memory history: the new process starts a new epoch, so the old cursor cannot be placed.
      await using second = await spawnHub();
      await publishSeqs(via(second), [
        { type: "deploy.queued", appId: "web", payload: { imageTag: "v2" } },
        step(3),
      ]);
      proxy.up(second.port);
      const resynced = await itemsOf(
        driver,
        "web",
        (items) => items.some((item) => item.kind === "snapshot"),
        "a snapshot",
      );
      const snapshot = resynced.at(-1)!;
      assert.equal(snapshot.kind, "snapshot");
      assert.equal(snapshot.kind === "snapshot" && snapshot.reason, "epoch");
      assert.deepEqual(snapshot.kind === "snapshot" && snapshot.apps, ["web"]);
      const after = await driver.publish([step(4), step(5)]);
      const items = await itemsOf(
        driver,
        "web",
        (items) => eventsIn(items).length === 4,
        "4 events",
      );
      assert.deepEqual(
        items.map((item) => item.kind === "event" ? item.seq : item.kind),
        [live[0], live[1], "snapshot", after[0], after[1]],
        "what the snapshot holds is not sent again as events",
      );
    },
  },
  {
    name: "the heartbeat watchdog reconnects when the hub stops answering (SIGSTOP)",
    async run(driver) {
      await using hub = await spawnHub();
      await driver.start(hub.url, {
        tokens: [TEST_TOKEN],
        heartbeatMs: 1000,
        connectTimeoutMs: 2000,
      });
      await driver.subscribe("all", "deploy.*");
      const before = await driver.publish([step(1)]);
      await itemsOf(driver, "all", (items) => eventsIn(items).length === 1, "1 event");
      // The watchdog's close is the first one after this. lastClose is not: the retry 50 ms
      // later reaches the stopped hub, and its connect timeout replaces lastClose while the
      // state stays reconnecting, before a loaded test may have read it.
      const closesBefore = (await driver.view()).closes.length;
      Deno.kill(hub.child.pid, "SIGSTOP");
      let view;
      try {
        view = await waitForState(driver, "reconnecting", "the watchdog to give up on the hub");
      } finally {
        Deno.kill(hub.child.pid, "SIGCONT");
      }
      const watchdog = view.closes[closesBefore];
      assert.equal(watchdog?.by, "client");
      assert.match(watchdog?.reason ?? "", /nothing from the hub for \d+ ms/);
      await resumedOn(driver, "all", "a new connection and the subscription on it");
      assert.equal((await driver.view()).opens, 2);
      const after = await driver.publish([step(2)]);
      const items = await itemsOf(
        driver,
        "all",
        (items) => eventsIn(items).length === 2,
        "2 events",
      );
      assert.deepEqual(
        items.map((item) => item.kind === "event" ? item.seq : item),
        [before[0], { kind: "resumed", replayed: 0 }, after[0]],
      );
    },
  },
  {
    name: "coming back online reconnects at once instead of waiting out the backoff",
    async run(driver) {
      await using hub = await spawnHub();
      await using proxy = startProxy(hub.port);
      // The first retry waits 10 to 20 s.
      await driver.start(proxy.url, {
        tokens: [TEST_TOKEN],
        backoffMinMs: 20_000,
        backoffMaxMs: 20_000,
      });
      await driver.subscribe("all", "deploy.*");
      proxy.down();
      await waitForState(driver, "reconnecting", "the client to lose its connection");
      proxy.up(hub.port);
      const asked = Date.now();
      await driver.wake();
      await waitFor(async () => (await driver.view()).opens === 2, "a reconnect at once", 8_000);
      assert.ok(Date.now() - asked < 8_000);
      await resumedOn(driver, "all", "the subscription on the new connection");
      const after = await driver.publish([step(1)]);
      const items = await itemsOf(
        driver,
        "all",
        (items) => eventsIn(items).length === 1,
        "1 event",
      );
      assert.deepEqual(
        items.map((item) => item.kind === "event" ? item.seq : item),
        [{ kind: "resumed", replayed: 0 }, after[0]],
      );
    },
  },
  {
    name: "subscribing twice is one hub subscription; unsubscribing twice is a no-op",
    async run(driver) {
      await using hub = await spawnHub();
      const subscriptions = async () => (await readMetrics(hub.url)).get("herald_subscriptions");
      await driver.start(hub.url, { tokens: [TEST_TOKEN] });
      await driver.subscribe("a", "deploy.*", { appId: "web" });
      await driver.subscribe("b", "deploy.*", { appId: "web" });
      await driver.subscribe("c", "deploy.*", { appId: "api" });
      // The connection's idle topic, web and api.
      assert.equal(await subscriptions(), 3);
      const first = await driver.publish([step(1), step(2, "api")]);
      await itemsOf(driver, "c", (items) => eventsIn(items).length === 1, "c's event");
      await itemsOf(driver, "b", (items) => eventsIn(items).length === 1, "b's event");
      await driver.unsubscribe("a");
      await driver.unsubscribe("a");
      assert.equal(await subscriptions(), 3, "b still holds the shared subscription");
      // Unsubscribing c removes every deploy.* subscription on the hub: the client puts b back
      // from its cursor.
      await driver.unsubscribe("c");
      await waitFor(async () => (await subscriptions()) === 2, "b to be subscribed again");
      const second = await driver.publish([step(3), step(4, "api")]);
      const b = await itemsOf(driver, "b", (items) => eventsIn(items).length === 2, "b's events");
      const view = await driver.view();
      assert.deepEqual(eventsIn(view.items.a!).map((e) => e.seq), [first[0]]);
      assert.deepEqual(eventsIn(b).map((e) => e.seq), [first[0], second[0]]);
      assert.deepEqual(eventsIn(view.items.c!).map((e) => e.seq), [first[1]]);
      assert.equal(view.duplicates, 0);
    },
  },
];
