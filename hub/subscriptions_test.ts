import assert from "node:assert/strict";
import { parseTopic } from "../events/topic.ts";
import { filtersOf, type Routed, type Subscription, SubscriptionIndex } from "./subscriptions.ts";

function sub(
  owner: string,
  topic: string,
  filter: { appId?: string; namespace?: string; userId?: string; sessionId?: string } = {},
) {
  return {
    owner,
    topic: parseTopic(topic)!,
    filters: filtersOf(filter),
  } satisfies Subscription<string>;
}

function matches(index: SubscriptionIndex<string>, event: Routed) {
  const owners: string[] = [];
  index.match(event, (subscription) => owners.push(subscription.owner));
  return owners.sort();
}

Deno.test("the index matches by pattern, appId and namespace", () => {
  const index = new SubscriptionIndex<string>();
  const all = sub("all", "*");
  for (
    const subscription of [
      all,
      sub("deploy", "deploy.*"),
      sub("exact", "deploy.step"),
      sub("web", "*", { appId: "web" }),
      sub("web-prod", "deploy.*", { appId: "web", namespace: "prod" }),
      sub("deep", "session.state.*"),
    ]
  ) index.add(subscription);
  assert.equal(index.size, 6);
  assert.deepEqual(matches(index, { type: "deploy.step", appId: "web", namespace: "prod" }), [
    "all",
    "deploy",
    "exact",
    "web",
    "web-prod",
  ]);
  assert.deepEqual(matches(index, { type: "deploy.step", appId: "api" }), [
    "all",
    "deploy",
    "exact",
  ]);
  assert.deepEqual(
    matches(index, { type: "deploy.queued", appId: "web", namespace: "staging" }),
    ["all", "deploy", "web"],
  );
  assert.deepEqual(matches(index, { type: "session.state.changed" }), ["all", "deep"]);
  assert.deepEqual(matches(index, { type: "session.state" }), ["all"]);
  index.remove(all);
  index.remove(all);
  assert.equal(index.size, 5);
  assert.deepEqual(matches(index, { type: "forge.queued" }), []);
});

Deno.test("the index matches user and session filters, each subscription once", () => {
  const index = new SubscriptionIndex<string>();
  const session = sub("session", "*", { sessionId: "user1-firefox" });
  for (
    const subscription of [
      sub("user1", "*", { userId: "user1" }),
      sub("user2", "*", { userId: "user2" }),
      session,
      sub("user1-web", "session.*", { userId: "user1", appId: "web" }),
      sub("wrong-user", "*", { sessionId: "user1-firefox", userId: "user2" }),
    ]
  ) index.add(subscription);
  const created = { type: "session.created", userId: "user1", sessionId: "user1-firefox" };
  assert.deepEqual(matches(index, created), ["session", "user1"]);
  assert.deepEqual(matches(index, { ...created, appId: "web" }), [
    "session",
    "user1",
    "user1-web",
  ]);
  assert.deepEqual(matches(index, { type: "session.created", userId: "user2" }), ["user2"]);
  assert.deepEqual(matches(index, { type: "session.created", sessionId: "user1-firefox" }), [
    "session",
  ]);
  assert.deepEqual(matches(index, { type: "deploy.step", appId: "web" }), []);
  index.remove(session);
  assert.deepEqual(matches(index, created), ["user1"]);
});
