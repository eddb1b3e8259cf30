import assert from "node:assert/strict";
import { parseTopic } from "../events/topic.ts";
import { type Subscription, SubscriptionIndex } from "./subscriptions.ts";

function sub(
  owner: string,
  topic: string,
  appId: string | null = null,
  namespace: string | null = null,
) {
  return { owner, topic: parseTopic(topic)!, appId, namespace } satisfies Subscription<string>;
}

function matches(
  index: SubscriptionIndex<string>,
  type: string,
  appId?: string,
  namespace?: string,
) {
  const owners: string[] = [];
  index.match(type, appId, namespace, (subscription) => owners.push(subscription.owner));
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
      sub("web", "*", "web"),
      sub("web-prod", "deploy.*", "web", "prod"),
      sub("deep", "session.state.*"),
    ]
  ) index.add(subscription);
  assert.equal(index.size, 6);
  assert.deepEqual(matches(index, "deploy.step", "web", "prod"), [
    "all",
    "deploy",
    "exact",
    "web",
    "web-prod",
  ]);
  assert.deepEqual(matches(index, "deploy.step", "api"), ["all", "deploy", "exact"]);
  assert.deepEqual(matches(index, "deploy.queued", "web", "staging"), ["all", "deploy", "web"]);
  assert.deepEqual(matches(index, "session.state.changed"), ["all", "deep"]);
  assert.deepEqual(matches(index, "session.state"), ["all"]);
  index.remove(all);
  index.remove(all);
  assert.equal(index.size, 5);
  assert.deepEqual(matches(index, "forge.queued"), []);
});
