import assert from "node:assert/strict";
import type { DirectedMessage } from "../hub/bus/bus.ts";
import { ManualClock } from "../hub/clock.ts";
import { MemoryPresence } from "../hub/presence/memory.ts";
import type { Principal } from "../hub/principal.ts";
import { DISCONNECT } from "../events/codes.ts";
import type { EventInput } from "../events/envelope.ts";
import { AgentRegistry, type AgentSettings, type AgentSocket } from "./registry.ts";
import { MemoryAgentStore } from "./store.ts";
import { deriveAgentKey } from "./keys.ts";

const SETTINGS: AgentSettings = {
  approval: "auto",
  staleMs: 45_000,
  checkMs: 5_000,
  pingMs: 30_000,
  commandTimeoutMs: 60_000,
  maxWaitMs: 60_000,
  stopOnShutdown: false,
};

const OPERATOR: Principal = {
  tenant: "t",
  subject: "operator",
  may: {
    subscribe: ["*"],
    publish: true,
    publishTopics: [],
    agent: false,
    control: false,
    admin: true,
    tenants: false,
  },
};
const AGENT: Principal = {
  tenant: "t",
  subject: "agent",
  may: {
    subscribe: [],
    publish: false,
    publishTopics: [],
    agent: true,
    control: false,
    admin: false,
    tenants: false,
  },
};

class FakeSocket implements AgentSocket {
  readonly sent: Record<string, unknown>[] = [];
  closed: { code: number; reason: string } | null = null;
  send(text: string): void {
    this.sent.push(JSON.parse(text));
  }
  close(code: number, reason: string): void {
    this.closed = { code, reason };
  }
  get closeCode(): number | undefined {
    return this.closed?.code;
  }
  commands() {
    // deno-lint-ignore no-explicit-any
    return this.sent.filter((frame) => frame.type === "command") as any[];
  }
}

/** Memory presence in which nodes can die (what the Redis presence says past their TTL). */
class MortalPresence extends MemoryPresence {
  readonly dead = new Set<string>();
  override async liveNodes(nodes: readonly string[]): Promise<Set<string>> {
    const live = await super.liveNodes(nodes);
    for (const node of this.dead) live.delete(node);
    return live;
  }
  /** `node` dies: it stops counting as alive and its entries drop out. */
  async kill(node: string, tenant: string): Promise<void> {
    this.dead.add(node);
    for (const entry of await this.list(tenant)) {
      if (entry.node === node) await this.leave(tenant, entry.connection);
    }
  }
}

/** Nodes sharing one store and one presence, directed messages delivered between them. */
function cluster(settings: Partial<AgentSettings> = {}, nodes = ["n1"]) {
  const clock = new ManualClock(1_000_000);
  const store = new MemoryAgentStore(100);
  const presence = new MortalPresence();
  const events: { tenant: string; type: string; payload: Record<string, unknown> }[] = [];
  const registries = new Map<string, AgentRegistry>();
  for (const node of nodes) {
    registries.set(
      node,
      new AgentRegistry({
        node,
        store,
        presence,
        clock,
        settings: { ...SETTINGS, ...settings },
        publish: (tenant: string, inputs: EventInput[]) => {
          for (const input of inputs) {
            events.push({ tenant, type: input.type, payload: input.payload });
          }
          return Promise.resolve();
        },
        issueKey: (tenant: string, agentId: string) => deriveAgentKey("secret", tenant, agentId),
        send: (to: string, message: DirectedMessage) => {
          if (presence.dead.has(to)) return Promise.resolve();
          queueMicrotask(() => registries.get(to)?.message(node, message));
          return Promise.resolve();
        },
      }),
    );
  }
  const types = () => events.map((event) => event.type);
  return {
    clock,
    store,
    presence,
    events,
    types,
    registries,
    registry: registries.get(nodes[0]!)!,
  };
}

async function settle(): Promise<void> {
  for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setTimeout(resolve, 0));
}

async function online(registry: AgentRegistry, agentId: string, principal = AGENT) {
  await registry.register(principal, { agentId, platform: "docker" });
  const socket = new FakeSocket();
  const handlers = await registry.attach(principal, agentId, socket);
  return { socket, handlers };
}

Deno.test("registry: stale after staleMs without a heartbeat (injected clock); a heartbeat resets it", async () => {
  const { clock, registry, types } = cluster();
  const { socket, handlers } = await online(registry, "k1");
  await clock.advance(40_000);
  handlers.text(
    '{"type":"heartbeat","timestamp":"2026-01-01T00:00:00.000000001Z","payload":{"status":"online"}}',
  );
  await settle();
  await clock.advance(45_000);
  await registry.check();
  assert.equal(socket.closed, null, "45 s after the last heartbeat is not yet stale");
  await clock.advance(1);
  await registry.check();
  assert.equal(socket.closeCode, 4020);
  assert.deepEqual(types(), ["agent.online", "agent.stale", "agent.offline"]);
  assert.equal((await registry.view("t", "k1")).online, false);
  handlers.closed();
  await settle();
  assert.equal(types().filter((type) => type === "agent.offline").length, 1, "offline once");
});

Deno.test("registry: application pings every pingMs", async () => {
  const { clock, registry } = cluster();
  const { socket } = await online(registry, "k1");
  await clock.advance(30_000);
  await registry.check();
  const ping = socket.sent.find((frame) => frame.type === "ping") as Record<string, unknown>;
  assert.ok(ping);
  assert.equal((ping.payload as Record<string, unknown>).timestamp, ping.timestamp);
});

Deno.test("registry: a second connection with the same agent id replaces the first (4520), no offline", async () => {
  const { registry, types } = cluster();
  const first = await online(registry, "k1");
  const second = await registry.attach(AGENT, "k1", new FakeSocket());
  assert.equal(first.socket.closeCode, 4520);
  first.handlers.closed();
  await settle();
  assert.equal((await registry.view("t", "k1")).online, true);
  assert.deepEqual(types(), ["agent.online", "agent.online"]);
  second.closed();
  await settle();
  assert.deepEqual(types(), ["agent.online", "agent.online", "agent.offline"]);
});

Deno.test("registry: reauthorize closes an agent whose credential was revoked or lost the agent scope (4001, offline), keeps the rest", async () => {
  const { registry, events } = cluster();
  const revoked = await online(registry, "revoked", { ...AGENT, subject: "agent-a" });
  const narrowed = await online(registry, "narrowed", { ...AGENT, subject: "agent-b" });
  const kept = await online(registry, "kept", { ...AGENT, subject: "agent-c" });
  const renewed = { ...AGENT, subject: "agent-c", credential: "renewed" };
  const closed = registry.reauthorize((who) => {
    if (who.subject === "agent-a") return null;
    if (who.subject === "agent-b") return { ...who, may: { ...who.may, agent: false } };
    return who === renewed ? who : renewed;
  });
  assert.equal(closed, 2);
  assert.deepEqual(revoked.socket.closed, {
    code: 4001,
    reason: DISCONNECT.tokenRevoked.reason,
  });
  assert.equal(narrowed.socket.closed?.reason, DISCONNECT.tokenNarrowed.reason);
  assert.equal(kept.socket.closed, null);
  await settle();
  const offline = events.filter((event) => event.type === "agent.offline");
  assert.deepEqual(offline.map((event) => [event.payload.agentId, event.payload.reason]), [
    ["revoked", "revoked"],
    ["narrowed", "revoked"],
  ]);
  assert.equal(registry.connectedHere, 1);
  assert.equal(
    registry.reauthorize((who) => who === renewed ? who : null),
    0,
    "it took the new one",
  );
  // Authenticated before that change, recorded after it: the latest change applies on attach.
  const late = await online(registry, "late", { ...AGENT, subject: "agent-a" });
  assert.equal(late.socket.closed?.reason, DISCONNECT.tokenRevoked.reason);
});

Deno.test("registry: manual approval keeps an agent pending until approved; rejected agents are closed and refused", async () => {
  const { registry } = cluster({ approval: "manual" });
  const pending = await registry.register(AGENT, { agentId: "k1" });
  assert.equal(pending.status, 202);
  assert.equal(pending.body.approvalStatus, "pending");
  assert.equal(pending.body.apiKey, undefined);
  await assert.rejects(registry.admit(AGENT, "k1"), /pending/);
  await registry.decide("t", "k1", true);
  const approved = await registry.register(AGENT, { agentId: "k1" });
  assert.equal(approved.body.approvalStatus, "approved");
  assert.match(String(approved.body.apiKey), /^hak_/);
  await registry.admit(AGENT, "k1");
  const socket = new FakeSocket();
  await registry.attach(AGENT, "k1", socket);
  await registry.decide("t", "k1", false);
  assert.equal(socket.closeCode, 4521);
  assert.equal((await registry.register(AGENT, { agentId: "k1" })).body.approvalStatus, "rejected");
  await assert.rejects(registry.admit(AGENT, "k1"), /rejected/);
  await assert.rejects(registry.decide("t", "nobody", true), /not registered/);
});

Deno.test("registry: bad registrations change nothing; a bound key cannot register another agent", async () => {
  const { registry, store } = cluster();
  await assert.rejects(registry.register(AGENT, { agentId: "has space" }), /agentId/);
  await assert.rejects(registry.register(AGENT, { agentId: "k1", capacity: 3 }), /capacity/);
  const bound = { ...AGENT, subject: "agent:k1" };
  await assert.rejects(registry.register(bound, { agentId: "k2" }), /belongs to agent "k1"/);
  assert.deepEqual(await store.list("t"), []);
});

Deno.test("registry: command happy path and failure update the status and publish agent.command.*", async () => {
  const { registry, types } = cluster();
  const { socket, handlers } = await online(registry, "k1");
  const sent = await registry.command(OPERATOR, "k1", {
    action: "stop_session",
    payload: { sessionId: "s" },
  });
  const [frame] = socket.commands();
  assert.equal(frame.payload.commandId, sent.commandId);
  handlers.text(JSON.stringify({ type: "ack", payload: { commandId: sent.commandId } }));
  await settle();
  assert.equal((await registry.commandStatus("t", "k1", sent.commandId)).status, "acked");
  const waiting = registry.waitFor("t", "k1", sent.commandId, 5_000);
  handlers.text(
    JSON.stringify({
      type: "complete",
      payload: { commandId: sent.commandId, result: { ok: true } },
    }),
  );
  const done = await waiting;
  assert.equal(done.status, "completed");
  assert.deepEqual(done.result, { ok: true });
  const second = await registry.command(OPERATOR, "k1", { action: "wake_session" });
  handlers.text(
    JSON.stringify({
      type: "failed",
      payload: { commandId: second.commandId, error: "no such session" },
    }),
  );
  await settle();
  const failed = await registry.commandStatus("t", "k1", second.commandId);
  assert.equal(failed.status, "failed");
  assert.equal(failed.error, "no such session");
  // A late complete after failed changes nothing: the first outcome wins.
  handlers.text(JSON.stringify({ type: "complete", payload: { commandId: second.commandId } }));
  await settle();
  assert.equal((await registry.commandStatus("t", "k1", second.commandId)).status, "failed");
  assert.deepEqual(types().filter((type) => type.startsWith("agent.command")), [
    "agent.command.sent",
    "agent.command.acked",
    "agent.command.completed",
    "agent.command.sent",
    "agent.command.failed",
  ]);
});

Deno.test("registry: a command times out after commandTimeoutMs (injected clock)", async () => {
  const { clock, registry, types } = cluster({ commandTimeoutMs: 10_000, staleMs: 3_600_000 });
  await online(registry, "k1");
  const sent = await registry.command(OPERATOR, "k1", { action: "hibernate_session" });
  await clock.advance(10_000);
  await registry.check();
  assert.equal((await registry.commandStatus("t", "k1", sent.commandId)).status, "sent");
  await clock.advance(1);
  await registry.check();
  const timedOut = await registry.commandStatus("t", "k1", sent.commandId);
  assert.equal(timedOut.status, "timed_out");
  assert.ok(types().includes("agent.command.timed_out"));
});

Deno.test("registry: commands to unknown or offline agents fail fast; a command in flight when the agent leaves is agent_lost", async () => {
  const { registry, types } = cluster();
  await assert.rejects(registry.command(OPERATOR, "nobody", { action: "x" }), /not registered/);
  await registry.register(AGENT, { agentId: "idle" });
  await assert.rejects(
    registry.command(OPERATOR, "idle", { action: "x" }),
    (error: Error & { code?: string }) => error.code === "agent_offline",
  );
  await assert.rejects(registry.command(OPERATOR, "idle", { action: "" }), /action/);
  const { handlers } = await online(registry, "k1");
  const sent = await registry.command(OPERATOR, "k1", { action: "start_session" });
  handlers.closed();
  await settle();
  const lost = await registry.commandStatus("t", "k1", sent.commandId);
  assert.equal(lost.status, "agent_lost");
  assert.equal(lost.reason, "disconnected");
  assert.ok(types().includes("agent.command.agent_lost"));
});

Deno.test("registry: a command reaches an agent held by another node, and its outcome reaches the waiter", async () => {
  const { registries } = cluster({}, ["n1", "n2"]);
  const holder = registries.get("n1")!;
  const origin = registries.get("n2")!;
  const { socket, handlers } = await online(holder, "k1");
  const sent = await origin.command(OPERATOR, "k1", { action: "start_session" });
  await settle();
  const [frame] = socket.commands();
  assert.equal(frame.payload.commandId, sent.commandId);
  const waiting = origin.waitFor("t", "k1", sent.commandId, 5_000);
  handlers.text(JSON.stringify({ type: "complete", payload: { commandId: sent.commandId } }));
  assert.equal((await waiting).status, "completed");
  const broadcast = await origin.broadcast(OPERATOR, { action: "ping_all", exclude: "nobody" });
  assert.equal((broadcast.sent as unknown[]).length, 1);
});

Deno.test("registry: the agents of a node that died are reported offline by another node, once", async () => {
  const { registries, presence, types } = cluster({}, ["n1", "n2"]);
  await online(registries.get("n1")!, "k1");
  // n1 dies: its presence entries drop out (what the Redis presence does past its TTL).
  for (const entry of await presence.list("t")) await presence.leave("t", entry.connection);
  await registries.get("n2")!.check();
  await registries.get("n2")!.check();
  assert.deepEqual(types(), ["agent.online", "agent.offline"]);
  assert.equal((await registries.get("n2")!.view("t", "k1")).online, false);
});

Deno.test("registry: the commands a dead node held are agent_lost (node_lost) once, however many nodes check; a late outcome changes nothing", async () => {
  const { registries, presence, events, store } = cluster({}, ["n1", "n2", "n3"]);
  const holder = registries.get("n1")!;
  const origin = registries.get("n2")!;
  const { socket, handlers } = await online(holder, "k1");
  const sent = await origin.command(OPERATOR, "k1", { action: "start_session" });
  await settle();
  assert.equal(socket.commands().length, 1, "the agent on n1 got the command");
  const waiting = origin.waitFor("t", "k1", sent.commandId, 10_000);
  // A check while n1 lives changes nothing.
  await origin.check();
  assert.equal((await origin.commandStatus("t", "k1", sent.commandId)).status, "sent");
  await presence.kill("n1", "t");
  await Promise.all([origin.check(), registries.get("n3")!.check()]);
  await origin.check();
  const lost = await waiting;
  assert.equal(lost.status, "agent_lost");
  assert.equal(lost.reason, "node_lost");
  const lostEvents = events.filter((event) => event.type === "agent.command.agent_lost");
  assert.equal(lostEvents.length, 1, "exactly one agent.command.agent_lost");
  assert.equal(lostEvents[0]!.payload.reason, "node_lost");
  assert.deepEqual(await store.unfinishedCommands("holder", "n1"), []);
  assert.deepEqual(await store.commandNodes("holder"), [], "n1 is forgotten once it holds nothing");
  // The agent's outcome arriving late (say on a reconnection) is ignored: the first one won.
  handlers.text(JSON.stringify({ type: "complete", payload: { commandId: sent.commandId } }));
  await settle();
  assert.equal((await origin.commandStatus("t", "k1", sent.commandId)).status, "agent_lost");
  assert.ok(!events.some((event) => event.type === "agent.command.completed"));
});

Deno.test("registry: the commands a dead node accepted are timed_out past their deadline by the survivors, once", async () => {
  // Shorter than staleMs: the silent agent stays connected past the deadline.
  const commandTimeoutMs = 10_000;
  const { clock, registries, presence, events, store } = cluster({ commandTimeoutMs }, [
    "n1",
    "n2",
    "n3",
  ]);
  const holder = registries.get("n1")!;
  const origin = registries.get("n2")!;
  const { socket } = await online(holder, "k1");
  const sent = await origin.command(OPERATOR, "k1", { action: "start_session" });
  await settle();
  assert.equal(socket.commands().length, 1, "the agent on n1 got the command");
  await presence.kill("n2", "t");
  // Dead origin, deadline not passed: nothing yet.
  await Promise.all([holder.check(), registries.get("n3")!.check()]);
  assert.equal((await holder.commandStatus("t", "k1", sent.commandId)).status, "sent");
  await clock.advance(commandTimeoutMs + 1);
  await Promise.all([holder.check(), registries.get("n3")!.check()]);
  await holder.check();
  const timedOut = await holder.commandStatus("t", "k1", sent.commandId);
  assert.equal(timedOut.status, "timed_out");
  assert.equal(timedOut.finishedAt, clock.now());
  const timedOutEvents = events.filter((event) => event.type === "agent.command.timed_out");
  assert.equal(timedOutEvents.length, 1, "exactly one agent.command.timed_out");
  assert.equal(timedOutEvents[0]!.payload.commandId, sent.commandId);
  assert.deepEqual(await store.unfinishedCommands("origin", "n2"), []);
  assert.deepEqual(await store.commandNodes("origin"), [], "n2 is forgotten once it has none");
  assert.deepEqual(await store.unfinishedCommands("holder", "n1"), [], "nor does its holder");
});

Deno.test("registry: drain closes agents with 1001, after a shutdown frame only when asked", async () => {
  for (const stopOnShutdown of [false, true]) {
    const { registry } = cluster({ stopOnShutdown });
    const { socket } = await online(registry, "k1");
    registry.drain();
    assert.equal(socket.closeCode, 1001);
    assert.equal(socket.sent.some((frame) => frame.type === "shutdown"), stopOnShutdown);
  }
});
