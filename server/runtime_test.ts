import assert from "node:assert/strict";
import { loadConfig } from "./config.ts";
import { adaptToRuntime } from "./runtime.ts";

const plain = { kv: true, denoDeploy: false };

Deno.test("a runtime with everything leaves the config alone", () => {
  const config = loadConfig({ HERALD_HISTORY: "kv", HERALD_KV_PATH: "/tmp/h.sqlite" });
  const { config: adapted, warnings } = adaptToRuntime(config, plain);
  assert.equal(adapted, config);
  assert.deepEqual(warnings, []);
});

Deno.test("without Deno KV only the kv history falls back to memory", () => {
  const noKv = { kv: false, denoDeploy: false };
  const kv = adaptToRuntime(loadConfig({ HERALD_HISTORY: "kv" }), noKv);
  assert.equal(kv.config.history, "memory");
  assert.match(kv.warnings[0]!, /^HERALD_HISTORY=kv, .*--unstable-kv/);
  const redis = adaptToRuntime(loadConfig({ HERALD_HISTORY: "redis" }), noKv);
  assert.equal(redis.config.history, "redis");
  assert.deepEqual(redis.warnings, []);
});

Deno.test("on Deno Deploy: a shutdown timeout of 5 s or more and a KV file path are reported", () => {
  const deploy = { kv: true, denoDeploy: true };
  const defaults = adaptToRuntime(loadConfig({}), deploy);
  assert.equal(defaults.warnings.length, 1);
  assert.match(defaults.warnings[0]!, /HERALD_SHUTDOWN_TIMEOUT_MS=10000.*set it to 4000/);
  const tuned = adaptToRuntime(
    loadConfig({ HERALD_SHUTDOWN_TIMEOUT_MS: "4000", HERALD_HISTORY: "kv", HERALD_KV_PATH: "k" }),
    deploy,
  );
  assert.deepEqual(tuned.warnings.map((warning) => warning.split(" ")[0]), ["HERALD_KV_PATH"]);
  assert.equal(tuned.config.kvPath, "k", "reported, not changed");
});
