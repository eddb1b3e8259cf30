import assert from "node:assert/strict";
import { startTestHub, TestClient } from "./_harness.ts";

Deno.test("a published event reaches a connected client", async () => {
  await using hub = startTestHub();
  await using client = await TestClient.connect(hub.wsUrl);
  const response = await hub.publish({ type: "deploy.queued", appId: "web" });
  assert.equal(response.status, 202);
  const [event] = await client.waitForEvents(1);
  assert.equal(event?.type, "deploy.queued");
  assert.deepEqual(event?.payload, {});
});
