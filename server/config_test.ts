import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "./config.ts";

Deno.test("defaults, environment and flags (flags win)", () => {
  const defaults = loadConfig({});
  assert.equal(defaults.port, 8800);
  assert.equal(defaults.hostname, "0.0.0.0");
  assert.equal(defaults.clientBuffer, 256);
  assert.equal(defaults.socketHighWaterBytes, 1024 * 1024);
  assert.equal(defaults.overflow, "disconnect");
  assert.equal(defaults.stallTimeoutMs, 10_000);
  assert.equal(defaults.maxMessageBytes, 512 * 1024);
  const config = loadConfig(
    {
      PORT: "9000",
      HERALD_ALLOWED_ORIGINS: "https://a.example, https://b.example:8443",
      HERALD_PORT_UNUSED: "x",
    },
    ["--port", "9100", "--hostname=127.0.0.1"],
  );
  assert.equal(config.port, 9100);
  assert.equal(config.hostname, "127.0.0.1");
  assert.deepEqual(config.allowedOrigins, ["https://a.example", "https://b.example:8443"]);
});

Deno.test("every bad value is reported at once", () => {
  try {
    loadConfig({
      HERALD_ALLOWED_ORIGINS: "dash.example.com",
      HERALD_STRICT_EVENTS: "maybe",
      HERALD_PUBLISH_TOKEN: "short",
    }, [
      "--port",
    ]);
    assert.fail("expected a ConfigError");
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    assert.equal(error.problems.length, 4, error.message);
  }
});
