import assert from "node:assert/strict";
import { DISCONNECT } from "../events/codes.ts";
import type { HeraldEvent } from "../events/envelope.ts";
import { FakeTransport, settle } from "./_fake_transport.ts";
import { LIMITS, testHub, topic } from "./_test_hub.ts";
import { principal } from "./principal.ts";

const step = (appId: string, n: number) => ({
  type: "deploy.step",
  appId,
  payload: { step: `s${n}`, status: "running" },
});

Deno.test("hub: an event reaches the matching subscriptions of its tenant, once per client", async () => {
  const { hub, connect } = await testHub();
  const deploys = connect();
  const web = connect();
  const both = connect();
  const elsewhere = connect("other");
  hub.subscribe(deploys.client, topic("deploy.*"), {});
  hub.subscribe(web.client, topic("*"), { appId: "web" });
  hub.subscribe(both.client, topic("deploy.*"), {});
  hub.subscribe(both.client, topic("deploy.step"), { appId: "web" });
  hub.subscribe(elsewhere.client, topic("*"), {});
  const [first, second] = await hub.publish("t", [
    step("web", 1),
    { type: "app.status", appId: "api", payload: {} },
  ]);
  assert.deepEqual(deploys.transport.messages.map((m) => m.seq), [first!.seq]);
  assert.deepEqual(web.transport.messages.map((m) => m.seq), [first!.seq]);
  assert.deepEqual(both.transport.messages.map((m) => m.seq), [first!.seq], "once, not twice");
  assert.deepEqual(elsewhere.transport.sent, [], "another tenant sees nothing");
  assert.notEqual(second!.seq, first!.seq);
  // The transport is told what the hub knows: type and cursor, no parsing needed.
  assert.deepEqual(
    { type: deploys.transport.sent[0]!.type, seq: deploys.transport.sent[0]!.seq },
    { type: "deploy.step", seq: first!.seq },
  );
});

Deno.test("hub: subscription limits, repeats and unsubscribe", async () => {
  const { hub, connect } = await testHub({ maxSubscriptions: 2 });
  const { client, transport } = connect();
  assert.deepEqual(hub.subscribe(client, topic("deploy.*"), {}), { state: "subscribed" });
  assert.deepEqual(hub.subscribe(client, topic("deploy.*"), {}), { state: "subscribed" });
  assert.deepEqual(hub.subscribe(client, topic("deploy.*"), { appId: "web" }), {
    state: "subscribed",
  });
  assert.deepEqual(hub.subscribe(client, topic("app.*"), {}), { state: "limit", max: 2 });
  assert.equal(hub.subscriptionCount, 2);
  assert.equal(hub.unsubscribe(client, "deploy.*"), 2, "every filter of the topic");
  assert.equal(hub.subscriptionCount, 0);
  await hub.publish("t", [step("web", 1)]);
  assert.deepEqual(transport.sent, []);
});

Deno.test("hub: the implicit * of a client without a topic ends at its first explicit subscribe", async () => {
  const { hub, connect } = await testHub();
  const { client, transport } = connect();
  hub.subscribeInitial(client, [topic("*")], {}, true);
  await hub.publish("t", [{ type: "app.status", appId: "web", payload: {} }]);
  hub.subscribe(client, topic("deploy.*"), {});
  await hub.publish("t", [{ type: "app.status", appId: "web", payload: {} }, step("web", 1)]);
  assert.deepEqual(transport.messages.map((m) => m.type), ["app.status", "deploy.step"]);
  assert.equal(hub.subscriptionCount, 1);
});

Deno.test("hub: a retried producer id is answered with its first acceptance and not delivered again", async () => {
  const { hub, connect, metrics } = await testHub();
  const { client, transport } = connect();
  hub.subscribe(client, topic("*"), {});
  const [first] = await hub.publish("t", [{ ...step("web", 1), id: "p-1" }]);
  const [retry, inBatch, again] = await hub.publish("t", [
    { ...step("web", 1), id: "p-1" },
    { ...step("web", 2), id: "p-2" },
    { ...step("web", 2), id: "p-2" },
  ]);
  assert.deepEqual(retry, first);
  assert.deepEqual(again, inBatch);
  assert.equal(transport.sent.length, 2);
  assert.equal(metrics.eventsDuplicate.value, 2);
});

Deno.test("hub: a consumer that keeps an event quiet stops its broadcast, and a replay leaves it out", async () => {
  const quietTypes = new Set(["resource.status"]);
  const folded: string[] = [];
  const consumer = {
    apply: (event: HeraldEvent) => {
      folded.push(event.type);
      return !quietTypes.has(event.type);
    },
  };
  const { hub, connect } = await testHub({ consumers: [consumer] });
  const live = connect();
  hub.subscribe(live.client, topic("*"), {});
  const [first] = await hub.publish("t", [step("web", 1)]);
  await hub.publish("t", [{ type: "resource.status", payload: {} }, step("web", 2)]);
  assert.deepEqual(folded, ["deploy.step", "resource.status", "deploy.step"]);
  assert.deepEqual(live.transport.messages.map((m) => m.type), ["deploy.step", "deploy.step"]);
  const resumed = connect();
  await hub.resume(resumed.client, [topic("*")], {}, first!.seq, () => {});
  await settle();
  assert.deepEqual(resumed.transport.messages.map((m) => m.type), ["deploy.step"]);
});

Deno.test("hub: closeAll closes every client with the given close, and forgets them", async () => {
  const { hub, connect } = await testHub();
  const a = connect();
  const b = connect("other");
  hub.subscribe(a.client, topic("*"), {});
  hub.closeAll(DISCONNECT.shutdown);
  assert.deepEqual(a.transport.closed, { code: 1001, reason: "server shutting down" });
  assert.deepEqual(b.transport.closed, { code: 1001, reason: "server shutting down" });
  assert.equal(hub.clientCount, 0);
  assert.equal(hub.subscriptionCount, 0);
});

Deno.test("hub: a fault in a client's pump closes it with 1011, not 1001", async () => {
  const { hub, clock } = await testHub({ limits: { ...LIMITS, highWaterBytes: 10 } });
  // The socket buffers too much: events 2 and 3 are queued (two readings), then the pump's
  // own reading fails.
  let reads = 0;
  const transport = new FakeTransport();
  Object.defineProperty(transport, "bufferedAmount", {
    get: () => {
      if (++reads > 2) throw new Error("Socket state unreadable");
      return 1000;
    },
  });
  const client = hub.connect(transport, principal("t", "test", false), "test");
  hub.subscribe(client, topic("*"), {});
  await hub.publish("t", [step("web", 1), step("web", 2), step("web", 3)]);
  await clock.advance(0);
  await settle();
  assert.deepEqual(transport.closed, { code: 1011, reason: "internal error" });
  assert.equal(hub.clientCount, 0);
});

Deno.test("hub: directed messages reach the handler set with onMessage", async () => {
  const { hub } = await testHub();
  const got: unknown[] = [];
  hub.message("node-2", { ignored: true });
  hub.onMessage((from, message) => got.push({ from, message }));
  await hub.bus.send(hub.bus.node, { command: "restart" });
  assert.deepEqual(got, [{ from: "node-1", message: { command: "restart" } }]);
});

Deno.test("hub: reauthorize closes revoked and narrowed connections with 4001, updates the rest, counts by transport", async () => {
  const { hub, metrics, connect } = await testHub();
  const revoked = connect();
  const narrowed = connect();
  const moved = connect();
  const kept = connect();
  const untouched = connect();
  for (const { client } of [revoked, narrowed, moved, kept, untouched]) {
    hub.subscribe(client, topic("deploy.*"), {});
  }
  hub.subscribe(narrowed.client, topic("app.status"), {});
  const deployOnly = {
    ...kept.client.principal,
    may: { ...kept.client.principal.may, subscribe: ["deploy.*"], publish: false },
  };
  const closed = hub.reauthorize((who) => {
    if (who === revoked.client.principal) return null;
    if (who === narrowed.client.principal || who === kept.client.principal) return deployOnly;
    if (who === moved.client.principal) return principal("elsewhere", "test", false);
    return who;
  });
  assert.equal(closed, 3);
  assert.deepEqual(revoked.transport.closed, {
    code: 4001,
    reason: DISCONNECT.tokenRevoked.reason,
  });
  assert.deepEqual(narrowed.transport.closed, {
    code: 4001,
    reason: DISCONNECT.tokenNarrowed.reason,
  });
  assert.equal(moved.transport.closed?.reason, DISCONNECT.tokenNarrowed.reason);
  assert.equal(kept.transport.closed, null);
  assert.equal(kept.client.principal, deployOnly, "a connection still allowed takes the new entry");
  assert.equal(untouched.transport.closed, null);
  assert.equal(metrics.revokedConnections.get("test"), 3);
  assert.equal(hub.clientCount, 2);
  await hub.publish("t", [step("web", 1)]);
  assert.equal(kept.transport.messages.length, 1, "a kept connection keeps receiving");
  // Authenticated before the change, registered after it: recheck applies the latest change.
  const late = hub.connect(new FakeTransport(true), revoked.client.principal, "test");
  hub.recheck(late);
  assert.equal(late.closed, true);
  assert.equal(metrics.revokedConnections.get("test"), 4);
});
