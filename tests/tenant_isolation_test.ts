/**
 * Zero cross-tenant delivery, randomized: two hub processes in `token` mode sharing one Redis bus
 * and one Redis history; many tenants with random topic patterns and filters over WebSocket and
 * SSE, in Herald's and StreamSpace's frames; events published by each tenant's own credential and by a control plane that names the
 * tenant per event, to either node; clients that drop and resume on the other node. Every
 * delivery is checked: right tenant, matching pattern and filter, each expected event exactly
 * once.
 */

import assert from "node:assert/strict";
import { parseTopic, topicMatches } from "../events/topic.ts";
import {
  type Frame,
  type HubProcess,
  redisMissing,
  spawnHub,
  startRedis,
  TestClient,
  waitFor,
} from "./_harness.ts";
import { waitReady } from "./_fanout.ts";
import { type TokenEntry, tokensFile } from "./_identity.ts";
import { isSubscribed, random } from "./_resume.ts";
import { SseReader } from "./_sse.ts";

const missing = redisMissing();
if (missing !== null) console.warn(`Skipping the tenant isolation test: ${missing}`);

const SEED = Number(Deno.env.get("HERALD_ISOLATION_SEED") ?? 20261203);
const TENANTS = Array.from({ length: 8 }, (_, index) => `tenant-${index}`);
const TYPES = ["iso.alpha", "iso.beta.one", "iso.beta.two", "other.thing"];
const PATTERNS = ["*", "iso.*", "iso.beta.*", "iso.alpha", "other.*", "iso.beta.two"];
const APPS = ["app-0", "app-1", "app-2"];
const USERS = ["user-0", "user-1"];
const EVENTS = 1600;
const PLANE = "control-plane-token-000000";

const reader = (tenant: string) => `${tenant}-reader-token-000000`;
const publisher = (tenant: string) => `${tenant}-publisher-token-0000`;

/** One published event, as the test remembers it. */
interface Sent {
  readonly tenant: string;
  readonly type: string;
  readonly appId: string;
  readonly userId: string;
  readonly n: number;
}

/**
 * A subscriber: what it asked for, and the event frames it received (each payload carries its
 * tenant and `n`), whatever its dialect's frame.
 */
interface Watcher {
  readonly tenant: string;
  readonly pattern: string;
  readonly appId: string | null;
  /** StreamSpace's `?user_id=`: the user filter, and StreamSpace's frames. */
  readonly userId?: string;
  readonly label: string;
  received(): Frame[];
}

/** The payload of an event frame: Herald's `payload`, StreamSpace's `data`. */
const payloadOf = (frame: Frame): Frame => frame.payload ?? frame.data;

function matches(watcher: Watcher, event: Sent): boolean {
  return event.tenant === watcher.tenant &&
    topicMatches(parseTopic(watcher.pattern)!, event.type) &&
    (watcher.appId === null || watcher.appId === event.appId) &&
    (watcher.userId === undefined || watcher.userId === event.userId);
}

/** Every delivery is of the watcher's tenant and matches it; nothing is missing or repeated. */
function check(watcher: Watcher, sent: readonly Sent[]): void {
  const frames = watcher.received().map(payloadOf);
  for (const frame of frames) {
    const origin = sent[frame.n]!;
    assert.equal(
      frame.tenant,
      watcher.tenant,
      `${watcher.label} got another tenant's event`,
    );
    assert.equal(origin.tenant, watcher.tenant, `${watcher.label} got event ${origin.n}`);
    assert.ok(matches(watcher, origin), `${watcher.label} got a non-matching event ${origin.n}`);
  }
  const got = frames.map((frame) => frame.n as number).sort((a, b) => a - b);
  const want = sent.filter((event) => matches(watcher, event)).map((event) => event.n);
  assert.deepEqual(got, want, `${watcher.label}: every matching event exactly once`);
}

function query(token: string, pattern: string, appId: string | null): string {
  const params = new URLSearchParams({ token, topic: pattern });
  if (appId !== null) params.set("appId", appId);
  return params.toString();
}

Deno.test({
  name:
    `tenant isolation: random tenants, patterns, filters and dialects over WebSocket, SSE and resume on two nodes with Redis (seed ${SEED})`,
  ignore: missing !== null,
  fn: async () => {
    const rand = random(SEED);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
    const entries: TokenEntry[] = [
      { token: PLANE, tenant: "ops", name: "plane", scopes: ["publish:*", "tenants:*"] },
      ...TENANTS.flatMap((tenant) => [
        { token: reader(tenant), tenant, name: "reader", scopes: ["subscribe:*"] },
        {
          token: publisher(tenant),
          tenant,
          name: "publisher",
          scopes: ["publish:iso.*", "publish:other.*"],
        },
      ]),
    ];
    await using file = await tokensFile(entries);
    await using redis = await startRedis();
    const env = {
      HERALD_AUTH: "token",
      HERALD_TOKENS_FILE: file.path,
      HERALD_BUS: "redis",
      HERALD_HISTORY: "redis",
      HERALD_REDIS_URL: redis.url,
      HERALD_HOSTNAME: "127.0.0.1",
    };
    const nodes: HubProcess[] = await Promise.all([spawnHub(env), spawnHub(env)]);
    const sockets: TestClient[] = [];
    const streams: SseReader[] = [];
    try {
      for (const node of nodes) await waitReady(node.url);
      const watchers: Watcher[] = [];
      for (const tenant of TENANTS) {
        for (let index = 0; index < 3; index++) {
          const pattern = pick(PATTERNS);
          const appId = rand() < 0.4 ? pick(APPS) : null;
          const node = pick(nodes);
          const useSse = index === 2;
          const label = `${tenant} ${useSse ? "SSE" : "WS"} ${pattern} ${appId ?? "any"}`;
          if (useSse) {
            const stream = await SseReader.open(
              `${node.url}/events/stream?${query(reader(tenant), pattern, appId)}`,
            );
            // Subscribed before the response headers were sent.
            assert.equal(stream.response.status, 200, label);
            streams.push(stream);
            watchers.push({
              tenant,
              pattern,
              appId,
              label,
              received: () => stream.events.map((message) => message.data),
            });
          } else {
            const socket = await TestClient.connect(
              `${node.wsUrl}?${query(reader(tenant), pattern, appId)}`,
            );
            // Query subscriptions are in place before the first message is read: a pong says so.
            await socket.request({ type: "ping", requestId: "ready" });
            sockets.push(socket);
            watchers.push({ tenant, pattern, appId, label, received: () => socket.events });
          }
        }
      }
      // One StreamSpace client per tenant: `?user_id=` picks the dialect and the user filter.
      for (const tenant of TENANTS) {
        const userId = pick(USERS);
        const node = pick(nodes);
        const label = `${tenant} StreamSpace ${userId}`;
        const socket = await TestClient.connect(
          `${node.wsUrl}?token=${reader(tenant)}&user_id=${userId}`,
        );
        await socket.request({ type: "ping", requestId: "ready" });
        sockets.push(socket);
        watchers.push({
          tenant,
          pattern: "*",
          appId: null,
          userId,
          label,
          // StreamSpace's frame: the payload is `data`, and there is no `payload`.
          received: () => socket.events.map((frame) => ("payload" in frame ? {} : frame)),
        });
      }
      // One resumer per tenant: subscribed to everything, dropped halfway, resumed on the other
      // node from the last cursor it saw.
      const resumers = await Promise.all(TENANTS.map(async (tenant, index) => {
        const home = nodes[index % 2]!;
        const socket = await TestClient.connect(`${home.wsUrl}?token=${reader(tenant)}&topic=*`);
        await socket.request({ type: "ping", requestId: "ready" });
        return { tenant, socket, index, before: [] as Frame[] };
      }));

      const sent: Sent[] = [];
      const publishSome = async (count: number) => {
        let left = count;
        while (left > 0) {
          const size = Math.min(left, 1 + Math.floor(rand() * 8));
          const viaPlane = rand() < 0.5;
          const own = pick(TENANTS);
          const batch = Array.from({ length: size }, () => {
            const event: Sent = {
              tenant: viaPlane ? pick(TENANTS) : own,
              type: pick(TYPES),
              appId: pick(APPS),
              userId: pick(USERS),
              n: sent.length,
            };
            sent.push(event);
            return {
              type: event.type,
              appId: event.appId,
              userId: event.userId,
              payload: { tenant: event.tenant, n: event.n },
              ...(viaPlane ? { tenant: event.tenant } : {}),
            };
          });
          left -= size;
          const response = await fetch(`${pick(nodes).url}/events`, {
            method: "POST",
            headers: {
              authorization: `Bearer ${viaPlane ? PLANE : publisher(own)}`,
              "content-type": "application/json",
            },
            body: JSON.stringify(batch),
          });
          assert.equal(response.status, 202, await response.clone().text());
          await response.body?.cancel();
        }
      };

      await publishSome(EVENTS / 2);
      // Drop every resumer once it has what was published for it so far, then resume elsewhere.
      const resumed = await Promise.all(resumers.map(async (resumer) => {
        const expected = sent.filter((event) => event.tenant === resumer.tenant).length;
        await resumer.socket.waitForEvents(expected, 30_000);
        const before = resumer.socket.events.slice();
        await resumer.socket.close();
        const other = nodes[(resumer.index + 1) % 2]!;
        const socket = await TestClient.connect(
          `${other.wsUrl}?token=${reader(resumer.tenant)}&topic=iso.none`,
        );
        socket.send({
          type: "subscribe",
          topic: "*",
          since: before.at(-1)?.seq ?? null,
          requestId: "resume",
        });
        assert.ok(isSubscribed(await socket.reply("resume")));
        sockets.push(socket);
        return { tenant: resumer.tenant, before, socket };
      }));
      await publishSome(EVENTS / 2);

      for (const { tenant, before, socket } of resumed) {
        const label = `${tenant} resumer`;
        const expected = sent.filter((event) => event.tenant === tenant).length;
        await waitFor(
          () => before.length + socket.events.length >= expected,
          `${label}: ${expected} events (have ${before.length + socket.events.length})`,
          30_000,
        );
        watchers.push({
          tenant,
          pattern: "*",
          appId: null,
          label,
          received: () => [...before, ...socket.events],
        });
      }
      for (const watcher of watchers) {
        const want = sent.filter((event) => matches(watcher, event)).length;
        await waitFor(
          () => watcher.received().length >= want,
          `${watcher.label}: ${want} events (have ${watcher.received().length})`,
          30_000,
        );
      }
      // Everything expected arrived; a ping round trip on every socket lets anything extra land.
      for (const socket of sockets) await socket.request({ type: "ping", requestId: "last" });
      for (const watcher of watchers) check(watcher, sent);
      const delivered = watchers.reduce((sum, watcher) => sum + watcher.received().length, 0);
      assert.ok(delivered > EVENTS, `deliveries checked: ${delivered}`);
      console.log(
        `tenant isolation: ${sent.length} events, ${TENANTS.length} tenants, ${watchers.length} subscribers, ${delivered} deliveries checked`,
      );
    } finally {
      for (const socket of sockets) await socket.close();
      for (const stream of streams) await stream.close();
      for (const node of nodes) await node.stop();
    }
  },
});
