/**
 * Agents across real processes: a command routed over real Redis to the node an agent is
 * connected to; a node killed with SIGKILL whose agents go offline on the other node within
 * HERALD_PRESENCE_TTL_MS + HERALD_AGENT_CHECK_MS, and the commands it held `agent_lost` for
 * their waiters (HTTP and `herald agents command`); a command whose accepting node was killed
 * timed out by the surviving node; the reference agent reconnecting after a hub restart and
 * running a demo action.
 */

import assert from "node:assert/strict";
import {
  freePort,
  type HubProcess,
  redisMissing,
  spawnHub,
  startRedis,
  TEST_TOKEN,
  TestClient,
  waitFor,
} from "./_harness.ts";
import {
  AGENT_ENV,
  commandsOf,
  connectAgent,
  control,
  obey,
  TEST_AGENT_KEY,
  waitOnline,
} from "./_agents.ts";
import { runCli } from "./_cli.ts";

const PRESENCE_TTL_MS = 2_000;
const CHECK_MS = 250;

async function redisHubs(
  redisUrl: string,
  extraEnv: Record<string, string> = {},
): Promise<[HubProcess, HubProcess]> {
  const env = {
    ...AGENT_ENV,
    ...extraEnv,
    HERALD_BUS: "redis",
    HERALD_REDIS_URL: redisUrl,
    HERALD_PRESENCE_TTL_MS: String(PRESENCE_TTL_MS),
    HERALD_AGENT_CHECK_MS: String(CHECK_MS),
  };
  const [a, b] = await Promise.all([spawnHub(env), spawnHub(env)]);
  return [a!, b!];
}

Deno.test({
  name: "agents over redis: a command reaches the agent on another node and its outcome comes back",
  ignore: redisMissing() !== null,
  async fn() {
    await using redis = await startRedis();
    const [a, b] = await redisHubs(redis.url);
    await using _a = a;
    await using _b = b;
    await using agent = await connectAgent(a.url, "edge-1");
    obey(agent);
    const seen = await waitOnline(b.url, "edge-1", true);
    const nodeOfA = (await (await fetch(`${a.url}/agents/edge-1`)).json()).agent.node;
    assert.equal(seen.node, nodeOfA, "node b sees the agent on node a");
    const answer = await control(b.url, "POST", "/agents/edge-1/commands?wait=10s", {
      action: "start_session",
      payload: { sessionId: "s-9" },
    });
    assert.equal(answer.status, 200);
    assert.equal(answer.body.status, "completed");
    assert.deepEqual(answer.body.command.result, { echoed: { sessionId: "s-9" } });
    // Round trips through both nodes and Redis (measured, not asserted: a loaded machine).
    const rounds: number[] = [];
    for (let round = 0; round < 30; round++) {
      const started = performance.now();
      const done = await control(b.url, "POST", "/agents/edge-1/commands?wait=10s", {
        action: "echo",
      });
      assert.equal(done.body.status, "completed");
      rounds.push(performance.now() - started);
    }
    rounds.sort((x, y) => x - y);
    console.log(
      `command round trip via another node: p50 ${rounds[15]!.toFixed(1)} ms, max ${
        rounds[29]!.toFixed(1)
      } ms`,
    );
    // Any node answers the command's status.
    const status = await control(a.url, "GET", `/agents/edge-1/commands/${answer.body.commandId}`);
    assert.equal(status.body.command.status, "completed");
    // An offline agent fails fast, on any node.
    // Node a must see it online first: a registered agent is offline before its connection
    // counts, so offline alone could be the state before it, with the disconnect still to come.
    const edge2 = await connectAgent(b.url, "edge-2");
    await waitOnline(a.url, "edge-2", true);
    await edge2.close();
    await waitOnline(a.url, "edge-2", false);
    const offline = await control(a.url, "POST", "/agents/edge-2/commands", { action: "x" });
    assert.equal(offline.status, 409);
    assert.equal(offline.body.error.code, "agent_offline");
  },
});

/**
 * Redis, two hubs on it (a and b) and a client of b watching `topic`, disposed together: the
 * scene where a dies and b notices.
 */
async function watchedPair(topic: string) {
  const stack = new AsyncDisposableStack();
  const redis = stack.use(await startRedis());
  const [a, b] = await redisHubs(redis.url);
  stack.use(a);
  stack.use(b);
  const watcher = stack.use(await TestClient.connect(`${b.wsUrl}?topic=${topic}`));
  return { a, b, watcher, [Symbol.asyncDispose]: () => stack.disposeAsync() };
}

Deno.test({
  name:
    "agents over redis: a node killed with SIGKILL has its agents reported offline by the other node in time",
  ignore: redisMissing() !== null,
  async fn() {
    await using pair = await watchedPair("agent.offline");
    const { a, b, watcher } = pair;
    const agent = await connectAgent(a.url, "doomed-1");
    await waitOnline(b.url, "doomed-1", true);
    const killedAt = Date.now();
    a.child.kill("SIGKILL");
    const offline = await watcher.waitForFrame(
      (frame) => frame.type === "agent.offline",
      "agent.offline on node b",
      PRESENCE_TTL_MS + CHECK_MS + 15_000,
    );
    const elapsed = Date.now() - killedAt;
    assert.equal(offline.payload.agentId, "doomed-1");
    assert.equal(offline.payload.reason, "node_lost");
    // Documented: within HERALD_PRESENCE_TTL_MS + HERALD_AGENT_CHECK_MS (plus slack for a
    // loaded machine).
    assert.ok(elapsed < PRESENCE_TTL_MS + CHECK_MS + 5_000, `took ${elapsed} ms`);
    console.log(`agent offline on the other node ${elapsed} ms after SIGKILL`);
    assert.equal((await waitOnline(b.url, "doomed-1", false)).online, false);
    await agent.closedPromise;
  },
});

/** Resolves with `promise`'s value, or throws naming `what` when it takes over `timeoutMs`. */
async function settlesWithin<T>(promise: Promise<T>, what: string, timeoutMs: number): Promise<T> {
  let settled: { value: T } | null = null;
  const watched = promise.then((value) => {
    settled = { value };
  });
  await waitFor(() => settled !== null, what, timeoutMs);
  await watched;
  return settled!.value;
}

Deno.test({
  name:
    "agents over redis: commands held by a node killed with SIGKILL are agent_lost (node_lost) for the HTTP and CLI waiters on the other node",
  ignore: redisMissing() !== null,
  async fn() {
    await using pair = await watchedPair("agent.command.agent_lost");
    const { a, b, watcher } = pair;
    // Connected to node a and silent: it receives commands and never answers them.
    const agent = await connectAgent(a.url, "mute-1");
    await waitOnline(b.url, "mute-1", true);
    const waitingHttp = control(b.url, "POST", "/agents/mute-1/commands?wait=60s", {
      action: "start_session",
      payload: { sessionId: "s-lost" },
    });
    await using waitingCli = runCli([
      "agents",
      "command",
      "mute-1",
      "stop_session",
      "--wait",
      "60",
      "--url",
      b.url,
      "--token",
      TEST_TOKEN,
    ]);
    await waitFor(() => commandsOf(agent).length === 2, "both commands on the agent", 15_000);
    const killedAt = Date.now();
    a.child.kill("SIGKILL");
    // Both waiters wait up to 60 s and commands time out after 60 s: an answer within the
    // presence TTL plus a check (and generous slack) comes from the dead node's sweep.
    const deadline = PRESENCE_TTL_MS + CHECK_MS + 15_000;
    const answer = await settlesWithin(waitingHttp, "the HTTP waiter's answer", deadline);
    console.log(`command agent_lost on the other node ${Date.now() - killedAt} ms after SIGKILL`);
    assert.equal(answer.status, 200);
    assert.equal(answer.body.status, "agent_lost");
    assert.equal(answer.body.command.reason, "node_lost");
    assert.match(answer.body.command.error, /node holding the agent's connection/);
    const cliExit = await settlesWithin(waitingCli.exit(), "herald agents command", deadline);
    assert.equal(cliExit, 1, waitingCli.stderr.join("\n"));
    assert.match(waitingCli.stdout.join("\n"), /^\S+ agent_lost the node holding/m);
    const lostEvents = await waitFor(() => {
      const frames = watcher.frames.filter((frame) => frame.type === "agent.command.agent_lost");
      return frames.length >= 2 ? frames : null;
    }, "agent.command.agent_lost for both commands");
    assert.deepEqual(lostEvents.map((frame) => frame.payload.reason), ["node_lost", "node_lost"]);
    assert.equal(new Set(lostEvents.map((frame) => frame.payload.commandId)).size, 2);
    const status = await control(b.url, "GET", `/agents/mute-1/commands/${answer.body.commandId}`);
    assert.equal(status.body.command.status, "agent_lost");
    await agent.closedPromise;
  },
});

Deno.test({
  name:
    "agents over redis: a command whose accepting node was killed with SIGKILL is timed_out by the node holding its agent",
  ignore: redisMissing() !== null,
  async fn() {
    await using redis = await startRedis();
    // Long enough that node b is surely killed before its own deadline check.
    const timeoutMs = 3_000;
    const [a, b] = await redisHubs(redis.url, {
      HERALD_AGENT_COMMAND_TIMEOUT_MS: String(timeoutMs),
    });
    await using _a = a;
    await using _b = b;
    await using watcher = await TestClient.connect(`${a.wsUrl}?topic=agent.command.timed_out`);
    // Connected to node a and silent: it receives the command and never answers it.
    await using agent = await connectAgent(a.url, "mute-2");
    await waitOnline(b.url, "mute-2", true);
    const sent = await control(b.url, "POST", "/agents/mute-2/commands", { action: "echo" });
    const commandId = sent.body.commandId;
    assert.equal(typeof commandId, "string", JSON.stringify(sent.body));
    await waitFor(() => commandsOf(agent).length === 1, "the command on the agent");
    b.child.kill("SIGKILL");
    const statusOnA = async () =>
      (await control(a.url, "GET", `/agents/mute-2/commands/${commandId}`)).body.command;
    const final = await waitFor(
      async () => {
        const command = await statusOnA();
        return command.status === "sent" ? null : command;
      },
      "the command's outcome, read through node a",
      PRESENCE_TTL_MS + timeoutMs + CHECK_MS + 15_000,
    );
    assert.equal(final.status, "timed_out");
    assert.match(final.error, /no outcome within 3000 ms/);
    const event = await watcher.waitForFrame(
      (frame) => frame.type === "agent.command.timed_out",
      "agent.command.timed_out on node a",
    );
    assert.equal(event.payload.commandId, commandId);
    assert.ok(
      a.logs.some((line) => /commands accepted by node \S+ timed out/.test(line)),
      "node a's dead-origin sweep timed it out",
    );
  },
});

const AGENT_SCRIPT = new URL("../cli/agent.ts", import.meta.url).pathname;

Deno.test("the reference agent reconnects after a hub restart and runs demo actions", async () => {
  const port = freePort();
  const dataDir = await Deno.makeTempDir();
  const env = { ...AGENT_ENV, PORT: String(port), HERALD_DATA_DIR: dataDir };
  let hub = await spawnHub(env);
  const agent = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      AGENT_SCRIPT,
      "--url",
      hub.url,
      "--key",
      TEST_AGENT_KEY,
      "--id",
      "ref-1",
      "--heartbeat-ms",
      "500",
      "--backoff-ms",
      "100",
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const reading = (async () => {
    for await (const chunk of agent.stdout.pipeThrough(new TextDecoderStream())) {
      lines.push(...chunk.split("\n").filter((line) => line !== ""));
    }
  })();
  try {
    await waitOnline(hub.url, "ref-1", true, 15_000);
    const echo = await control(hub.url, "POST", "/agents/ref-1/commands?wait=10s", {
      action: "echo",
      payload: { hello: "agent" },
    });
    assert.equal(echo.body.status, "completed");
    assert.deepEqual(echo.body.command.result, { hello: "agent" });
    const unknown = await control(hub.url, "POST", "/agents/ref-1/commands?wait=10s", {
      action: "format_disk",
    });
    assert.equal(unknown.body.status, "failed");
    await waitFor(async () => {
      const agentView = (await (await fetch(`${hub.url}/agents/ref-1`)).json()).agent;
      return agentView.lastHeartbeat !== null;
    }, "a heartbeat from the reference agent");

    await hub.stop();
    await waitFor(() => lines.some((line) => line.includes("disconnected (1001)")), "1001", 10_000);
    hub = await spawnHub(env);
    // The memory store forgot everything: the agent registers again and reconnects.
    await waitOnline(hub.url, "ref-1", true, 15_000).catch((error) => {
      throw new Error(`${error.message}\n${lines.join("\n")}\n${hub.logs.join("\n")}`);
    });
    const again = await control(hub.url, "POST", "/agents/ref-1/commands?wait=10s", {
      action: "start_session",
      payload: { sessionId: "demo" },
    });
    assert.equal(again.body.status, "completed");
  } finally {
    agent.kill("SIGTERM");
    await agent.status;
    await agent.stderr.cancel();
    await reading;
    await hub.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("without HERALD_AGENT_KEY the hub generates one into its data directory (0600), never logs it, and agents register with it", async () => {
  const dataDir = await Deno.makeTempDir();
  try {
    await using hub = await spawnHub({ HERALD_DATA_DIR: dataDir });
    const path = `${dataDir}/agent-key`;
    const key = (await Deno.readTextFile(path)).trim();
    assert.ok(key.length >= 32);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    const registered = await fetch(`${hub.url}/api/v1/agents/register`, {
      method: "POST",
      headers: { "x-agent-api-key": key, "content-type": "application/json" },
      body: '{"agentId":"generated-1"}',
    });
    const body = await registered.json();
    assert.equal(registered.status, 201);
    await hub.stop();
    const logs = hub.logs.join("\n");
    assert.match(logs, /Generated an agent key and stored it in/);
    assert.ok(!logs.includes(key), "the agent key is never logged");
    assert.ok(!logs.includes(body.apiKey), "nor an issued key");
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
