import assert from "node:assert/strict";
import { MemoryPresence } from "./memory.ts";
import type { PresenceEntry } from "./presence.ts";

const entry = (tenant: string, connection: string, since: number): PresenceEntry => ({
  tenant,
  connection,
  node: "n1",
  subject: `agent-${connection}`,
  transport: "websocket",
  since,
});

Deno.test("memory presence: per tenant, oldest first, idempotent, emptied on close", async () => {
  const presence = new MemoryPresence();
  await presence.start();
  await presence.join(entry("t", "c2", 20));
  await presence.join(entry("t", "c1", 10));
  await presence.join(entry("t", "c1", 10));
  await presence.join(entry("u", "c3", 5));
  assert.deepEqual((await presence.list("t")).map((e) => e.connection), ["c1", "c2"]);
  assert.deepEqual((await presence.list("u")).map((e) => e.connection), ["c3"]);
  assert.equal(await presence.find("u", "c1"), null, "never another tenant's connection");
  await presence.leave("t", "c2");
  await presence.leave("t", "c2");
  assert.deepEqual((await presence.list("t")).map((e) => e.connection), ["c1"]);
  await presence.close();
  assert.deepEqual(await presence.list("t"), []);
});
