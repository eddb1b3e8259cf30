/**
 * The agent store on a real Redis, as two nodes share it: the indexes of the commands each node
 * holds and accepted, the first-outcome-wins transition when two survivors race to report a dead node's
 * commands, and an index that forgets what expired.
 */
import assert from "node:assert/strict";
import { RedisAgentStore } from "../agents/redis.ts";
import type { CommandRecord } from "../agents/store.ts";
import { redisMissing, startRedis } from "./_harness.ts";

function store(url: string, commandTtlMs = 60_000): RedisAgentStore {
  return new RedisAgentStore({ url, prefix: "held", commandTtlMs });
}

function command(
  commandId: string,
  holder: string,
  createdAt = Date.now(),
  origin = "n2",
): CommandRecord {
  return {
    tenant: "t:1",
    commandId,
    agentId: "k1",
    action: "start_session",
    payload: {},
    origin,
    holder,
    createdAt,
    deadline: createdAt + 60_000,
    status: "sent",
    ackedAt: null,
    finishedAt: null,
    result: null,
    error: null,
    reason: null,
  };
}

Deno.test({
  name:
    "redis agent store: a dead node's held or accepted commands are finished by exactly one of two racing nodes, then the node is forgotten",
  ignore: redisMissing() !== null,
  async fn() {
    await using redis = await startRedis();
    const [first, second] = [store(redis.url), store(redis.url)];
    await Promise.all([first.start(), second.start()]);
    try {
      await first.putCommand(command("c1", "n1"));
      await first.putCommand(command("c2", "n1"));
      await first.putCommand(command("c3", "n3", Date.now(), "n4"));
      await first.finishCommand("t:1", "c2", { status: "completed", at: 1 });
      assert.deepEqual((await second.commandNodes("holder")).sort(), ["n1", "n3"]);
      assert.deepEqual(await second.unfinishedCommands("holder", "n1"), [
        { tenant: "t:1", commandId: "c1" },
      ]);
      assert.deepEqual((await second.commandNodes("origin")).sort(), ["n2", "n4"]);
      assert.deepEqual(await second.unfinishedCommands("origin", "n2"), [
        { tenant: "t:1", commandId: "c1" },
      ]);
      const lost = { status: "agent_lost", at: 2, reason: "node_lost" } as const;
      const wins = await Promise.all([
        first.finishCommand("t:1", "c1", lost),
        second.finishCommand("t:1", "c1", lost),
      ]);
      assert.deepEqual(wins.sort(), [false, true], "exactly one node reports it");
      assert.equal((await first.getCommand("t:1", "c1"))?.reason, "node_lost");
      assert.deepEqual(await second.unfinishedCommands("holder", "n1"), []);
      assert.deepEqual(await second.commandNodes("holder"), ["n3"], "n1 holds nothing: forgotten");
      assert.deepEqual(await second.unfinishedCommands("origin", "n2"), []);
      assert.deepEqual(await second.commandNodes("origin"), ["n4"], "n2 has none: forgotten");
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
  },
});

Deno.test({
  name: "redis agent store: the held index drops commands whose record expired",
  ignore: redisMissing() !== null,
  async fn() {
    await using redis = await startRedis();
    const shortLived = store(redis.url, 200);
    await shortLived.start();
    try {
      await shortLived.putCommand(command("gone", "n1"));
      assert.equal(await redis.cli("ZCARD", "held:agent-commands-held:n1"), "1");
      // Its record expires (deleted here rather than waited for).
      await redis.cli("DEL", "held:agent-command:3:t:1:gone");
      assert.deepEqual(await shortLived.unfinishedCommands("holder", "n1"), []);
      assert.equal(await redis.cli("ZCARD", "held:agent-commands-held:n1"), "0");
      assert.deepEqual(await shortLived.commandNodes("holder"), []);
      assert.deepEqual(await shortLived.unfinishedCommands("origin", "n2"), []);
      assert.equal(await redis.cli("ZCARD", "held:agent-commands-accepted:n2"), "0");
      assert.deepEqual(await shortLived.commandNodes("origin"), []);
      // A later command on a node prunes the members older than it whose record expired.
      const old = Date.now() - 1_000;
      await shortLived.putCommand(command("old", "n5", old));
      await shortLived.putCommand(command("new", "n5", old + 500));
      assert.equal(
        await redis.cli("ZRANGE", "held:agent-commands-held:n5", "0", "-1"),
        "3:t:1:new",
      );
    } finally {
      await shortLived.close();
    }
  },
});
