/**
 * Graceful shutdown of a real hub process: on SIGTERM or SIGINT it stops accepting, closes
 * every socket with 1001 (a stalled one included), flushes its logs and exits 0 in time.
 */
import assert from "node:assert/strict";
import { spawnHub, TestClient } from "./_harness.ts";
import { RawWebSocket } from "./_raw_ws.ts";

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`${signal}: every client gets 1001, the process exits 0 and logs its last line`, async () => {
    const hub = await spawnHub({ HERALD_SHUTDOWN_TIMEOUT_MS: "10000" });
    const clients = await Promise.all(
      Array.from({ length: 3 }, () => TestClient.connect(hub.wsUrl)),
    );
    // A client that never reads must not hold the shutdown up.
    const { socket: stalled } = await RawWebSocket.handshake(hub.port);
    const startedAt = Date.now();
    hub.child.kill(signal);
    const closes = await Promise.all(clients.map((client) => client.closedPromise));
    const status = await hub.stop();
    const elapsed = Date.now() - startedAt;
    stalled.close();
    assert.deepEqual(closes.map((close) => close.code), [1001, 1001, 1001]);
    assert.equal(status.code, 0, hub.logs.join("\n"));
    assert.ok(elapsed < 10_000, `exited after ${elapsed} ms`);
    const messages = hub.logs.map((line) => JSON.parse(line).message);
    assert.ok(messages.includes("Shut down cleanly"), "the last log line was flushed");
    await assert.rejects(fetch(`${hub.url}/health`), "no longer accepting");
  });
}

Deno.test("bad settings stop the start with one clear line per problem and exit 2", async () => {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-env",
      "--allow-read",
      "--allow-write",
      "--allow-net",
      "main.ts",
      "--colour",
    ],
    cwd: new URL("..", import.meta.url).pathname,
    env: { PORT: "99999", HERALD_OVERFLOW: "explode", HERALD_CLIENT_BUFFER: "-1" },
    stderr: "piped",
    stdout: "null",
  }).output();
  const text = new TextDecoder().decode(stderr);
  assert.equal(code, 2);
  assert.match(text, /PORT must be a whole number from 0 to 65535, got "99999"/);
  assert.match(
    text,
    /HERALD_OVERFLOW must be one of disconnect, drop-oldest, conflate, got "explode"/,
  );
  assert.match(text, /HERALD_CLIENT_BUFFER must be a whole number/);
  assert.match(text, /--colour: unknown flag/);
});

Deno.test("without HERALD_PUBLISH_TOKEN the first start stores a token with mode 0600 and never logs it", async () => {
  const dataDir = await Deno.makeTempDir();
  const hub = await spawnHub({ HERALD_PUBLISH_TOKEN: "", HERALD_DATA_DIR: dataDir });
  await hub.stop();
  const path = `${dataDir}/publish-token`;
  const token = (await Deno.readTextFile(path)).trim();
  assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  assert.ok(token.length >= 32);
  assert.ok(hub.logs.some((line) => line.includes(path)), "the log says where the token is");
  assert.ok(!hub.logs.some((line) => line.includes(token)), "the token itself is never logged");
  // The second start reuses it.
  const again = await spawnHub({ HERALD_PUBLISH_TOKEN: "", HERALD_DATA_DIR: dataDir });
  const response = await fetch(`${again.url}/events`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ type: "deploy.queued" }),
  });
  await again.stop();
  assert.equal(response.status, 202);
  await Deno.remove(dataDir, { recursive: true });
});
