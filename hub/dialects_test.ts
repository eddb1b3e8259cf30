import assert from "node:assert/strict";
import { testHub, topic } from "./_test_hub.ts";

const persona = {
  type: "persona.updated",
  payload: { namespace: "production", name: "nginx", phase: "Degraded", health: "Unhealthy" },
};

Deno.test("hub: each dialect's frame is built once per event and shared by its clients", async () => {
  const { hub, connect } = await testHub();
  const dorgu = [connect(), connect(), connect()];
  const herald = [connect(), connect()];
  for (const { client } of dorgu) {
    hub.subscribe(client, topic("persona.*"), {}, { dialect: "dorgu", name: "personas" });
  }
  for (const { client } of herald) hub.subscribe(client, topic("persona.*"), {});
  await hub.publish("t", [persona]);
  const dorguSent = dorgu.map(({ transport }) => transport.sent[0]!);
  const heraldSent = herald.map(({ transport }) => transport.sent[0]!);
  // The same object: serialized once, not once per client.
  for (const sent of dorguSent) assert.equal(sent, dorguSent[0]);
  for (const sent of heraldSent) assert.equal(sent, heraldSent[0]);
  assert.notEqual(dorguSent[0]!.frame, heraldSent[0]!.frame);
  assert.equal(JSON.parse(dorguSent[0]!.frame).topic, "personas");
  assert.equal(JSON.parse(heraldSent[0]!.frame).type, "persona.updated");
});

Deno.test("hub: a client subscribed in two dialects gets the event once in each", async () => {
  const { hub, connect } = await testHub();
  const both = connect();
  hub.subscribe(both.client, topic("*"), {});
  hub.subscribe(both.client, topic("persona.*"), {});
  hub.subscribeAll(both.client, [topic("persona.*")], {}, { dialect: "dorgu", name: "personas" });
  await hub.publish("t", [persona]);
  assert.deepEqual(both.transport.messages.map((m) => m.type), ["persona.updated", "event"]);
  assert.equal(hub.unsubscribe(both.client, "personas"), 1, "by the name it was given");
  await hub.publish("t", [persona]);
  assert.deepEqual(both.transport.messages.map((m) => m.type).slice(2), ["persona.updated"]);
});

Deno.test("hub: subscribing to every pattern of a dorgu topic is all or nothing at the limit", async () => {
  const { hub, connect } = await testHub({ maxSubscriptions: 2 });
  const { client } = connect();
  hub.subscribe(client, topic("deploy.*"), {});
  const result = hub.subscribeAll(
    client,
    [topic("validation.*"), topic("reconcile.*")],
    {},
    { dialect: "dorgu", name: "events" },
  );
  assert.deepEqual(result, { state: "limit", max: 2 });
  assert.equal(client.subscriptions.size, 1, "nothing changed");
});
