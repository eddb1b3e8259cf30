import assert from "node:assert/strict";
import { parseTopic, prefixesOf, topicMatches } from "./topic.ts";

Deno.test("topic patterns parse and match", () => {
  assert.deepEqual(parseTopic("*"), { kind: "prefix", topic: "*", prefix: "" });
  assert.deepEqual(parseTopic("deploy.*"), {
    kind: "prefix",
    topic: "deploy.*",
    prefix: "deploy.",
  });
  assert.deepEqual(parseTopic("cluster.nodeAdded"), {
    kind: "exact",
    topic: "cluster.nodeAdded",
    type: "cluster.nodeAdded",
  });
  for (const bad of ["", "deploy", "Deploy.*", "deploy.**", "*.step", "deploy..x", "deploy.*.x"]) {
    assert.equal(parseTopic(bad), null, bad);
  }
  const prefix = parseTopic("deploy.*")!;
  assert.ok(topicMatches(prefix, "deploy.step"));
  assert.ok(topicMatches(prefix, "deploy.step.sub"));
  assert.ok(!topicMatches(prefix, "deployx.step"));
  assert.deepEqual(prefixesOf("a.b.c"), ["", "a.", "a.b."]);
});
