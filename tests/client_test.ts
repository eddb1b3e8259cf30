/**
 * The TypeScript client (`client/`) in Deno against real hub processes: the shared scenarios of
 * `_client_scenarios.ts`, and the bounded buffer of a subscription that is not read.
 * @module
 */

import assert from "node:assert/strict";
import { connect, type SubscriptionItem } from "../client/mod.ts";
import { Recorder } from "./_client_recorder.ts";
import { CLIENT_SCENARIOS, type ClientDriver } from "./_client_scenarios.ts";
import { publishSeqs, startTestHub, TEST_TOKEN, waitFor } from "./_harness.ts";
import { signJwt, startExpiringJwtHub } from "./_identity.ts";

/** The driver for a client running in this process. */
function denoDriver(): ClientDriver & AsyncDisposable {
  let recorder: Recorder | null = null;
  const get = () => recorder ?? assert.fail("start the recorder first");
  const close = async () => {
    await recorder?.close();
    recorder = null;
  };
  return {
    start: (url, options) => {
      recorder = new Recorder(url, options);
      return Promise.resolve();
    },
    subscribe: (name, topic, options) => {
      get().subscribe(name, topic, options);
      return get().ready(name);
    },
    unsubscribe: (name) => Promise.resolve(get().unsubscribe(name)),
    publish: (events) => get().publish(events),
    view: () => Promise.resolve(get().view()),
    wake: () => Promise.resolve(get().wake()),
    close,
    [Symbol.asyncDispose]: close,
  };
}

for (const scenario of CLIENT_SCENARIOS) {
  Deno.test(`client (Deno): ${scenario.name}`, async () => {
    await using driver = denoDriver();
    await scenario.run(driver);
  });
}

Deno.test("client (Deno): a subscription nobody reads keeps its newest items and says what it dropped", async () => {
  await using hub = startTestHub();
  const client = connect(hub.url, { token: TEST_TOKEN });
  try {
    const subscription = client.subscribe("log.*", { bufferSize: 3 });
    // A second subscription, read as events come, tells when the first one has them all.
    const watcher = client.subscribe("*");
    let seen = 0;
    void (async () => {
      for await (const item of watcher) if (item.kind === "event") seen++;
    })();
    await subscription.ready;
    await watcher.ready;
    const seqs = await publishSeqs(
      hub,
      Array.from({ length: 10 }, (_, n) => ({ type: "log.line", payload: { line: `l${n}` } })),
    );
    await waitFor(() => seen === 10, "the events to reach the client");
    const items: SubscriptionItem[] = [];
    const iterator = subscription[Symbol.asyncIterator]();
    await waitFor(async () => {
      const next = await iterator.next();
      if (!next.done) items.push(next.value);
      return items.length === 4;
    }, "4 items");
    assert.deepEqual(items[0], { kind: "dropped", count: 7 });
    assert.deepEqual(
      items.slice(1).map((item) => item.kind === "event" && item.event.seq),
      seqs.slice(7),
    );
    subscription.unsubscribe();
    subscription.unsubscribe();
  } finally {
    await client.close();
  }
});

Deno.test("client (Deno): 4001 (token expired) asks getToken for a new token; with a fixed token it is final", async () => {
  await using hub = await startExpiringJwtHub(0);
  const claims = { sub: "dash", tenant: "acme", scope: "subscribe:*" };
  // exp is whole seconds from a floored now: 1 s may leave a few ms, expired before the
  // handshake; 2 s leaves at least one.
  const fixed = connect(hub.url, { token: await signJwt(claims, { expiresInSeconds: 2 }) });
  let calls = 0;
  const refreshing = connect(hub.url, {
    getToken: () => signJwt(claims, { expiresInSeconds: ++calls === 1 ? 2 : 3600 }),
  });
  try {
    await waitFor(() => fixed.connectionState === "closed", "the fixed-token client to stop");
    assert.deepEqual(fixed.lastClose, {
      code: 4001,
      reason: "token expired; reconnect with a new token",
      by: "hub",
      reconnect: false,
    });
    await waitFor(
      () => refreshing.opens === 2 && refreshing.connectionState === "open",
      "the getToken client to reconnect with a new token",
    );
    assert.equal(refreshing.lastClose?.code, 4001);
    assert.equal(refreshing.lastClose?.reconnect, true);
    assert.equal(calls, 2);
  } finally {
    await fixed.close();
    await refreshing.close();
  }
});

Deno.test("client (Deno): the token travels as the bearer.<token> subprotocol, never in the URL; other tokens as ?token=", async () => {
  // A real hub behind a recording handler: what the client's handshake carries.
  await using hub = startTestHub({ HERALD_AUTH: "none" });
  const seen: { url: string; protocol: string | null }[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, (request) => {
    seen.push({ url: request.url, protocol: request.headers.get("sec-websocket-protocol") });
    return hub.app.handler(request);
  });
  try {
    const url = `http://127.0.0.1:${server.addr.port}/`;
    const client = connect(url, { token: TEST_TOKEN });
    await waitFor(() => client.connectionState === "open", "the client opened");
    await client.close();
    // Not the hub's token (so refused), but the handshake shows where it went.
    const unsafe = connect(url, { token: "with/slash=and space" });
    await waitFor(() => seen.length >= 2, "the second handshake");
    await unsafe.close();
    assert.equal(seen[0]!.protocol, `bearer.${TEST_TOKEN}`);
    assert.ok(!seen[0]!.url.includes(TEST_TOKEN), `the URL holds the token: ${seen[0]!.url}`);
    assert.equal(seen[1]!.protocol, null);
    assert.equal(new URL(seen[1]!.url).searchParams.get("token"), "with/slash=and space");
  } finally {
    await server.shutdown();
  }
});
