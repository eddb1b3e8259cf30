import assert from "node:assert/strict";
import { principal } from "../hub/principal.ts";
import { CredentialAuth, PublishTokenAuth } from "./auth.ts";
import { SecretToken } from "./token.ts";

const AGENT = "agent-token-0123456789";
const READER = "reader-token-0123456789";
const auth = new CredentialAuth((token) => {
  if (token === AGENT) {
    const base = principal("acme", "agent-1", false);
    return { ...base, may: { ...base.may, subscribe: [], agent: true } };
  }
  return token === READER ? principal("acme", "dash", false) : "the token presented is not valid";
});

Deno.test("auth seam: agents present X-Agent-API-Key and need the agent scope", async () => {
  const agent = (key: string) =>
    auth.authenticate(
      new Request("http://hub/agents", { headers: { "x-agent-api-key": key } }),
      "agent",
    );
  const ok = await agent(AGENT);
  assert.ok(ok.ok && ok.principal.may.agent && ok.principal.tenant === "acme");
  const reader = await agent(READER);
  assert.ok(!reader.ok && reader.refusal.code === "forbidden");
  const bearerOnly = await auth.authenticate(
    new Request("http://hub/agents", { headers: { authorization: `Bearer ${AGENT}` } }),
    "agent",
  );
  assert.ok(!bearerOnly.ok && bearerOnly.refusal.code === "unauthorized", "only the agent header");
  const control = await auth.authenticate(
    new Request("http://hub/agents/k1/commands", { headers: { authorization: `Bearer ${AGENT}` } }),
    "control",
  );
  assert.ok(!control.ok && control.refusal.code === "forbidden", "control needs its scope");
});

Deno.test("auth seam: credentials from the header, the subprotocol and the query; refusals hold no token", async () => {
  const via = [
    new Request("http://hub/ws", { headers: { authorization: `Bearer ${READER}` } }),
    new Request("http://hub/ws", {
      headers: { "sec-websocket-protocol": `herald, bearer.${READER}` },
    }),
    new Request(`http://hub/ws?token=${READER}`),
  ];
  for (const request of via) {
    const outcome = await auth.authenticate(request, "connect");
    assert.ok(outcome.ok && outcome.principal.subject === "dash");
  }
  const wrong = "wrong-token-that-must-not-echo";
  for (
    const request of [
      new Request(`http://hub/ws?token=${wrong}`),
      new Request("http://hub/ws", { headers: { authorization: `Bearer ${"x".repeat(20_000)}` } }),
    ]
  ) {
    const outcome = await auth.authenticate(request, "read");
    assert.ok(!outcome.ok && outcome.refusal.code === "unauthorized");
    assert.ok(!outcome.refusal.message.includes(wrong) && outcome.refusal.message.length < 200);
  }
});

const agentRequest = (key?: string) =>
  new Request("http://hub/api/v1/agents/connect?agent_id=k1", {
    headers: key === undefined ? {} : { "x-agent-api-key": key },
  });

Deno.test("auth seam: agent access reads X-Agent-API-Key: the hub-wide key, an issued key, or a refusal", async () => {
  const auth = new PublishTokenAuth(new SecretToken("publish-token-0123456789"), {
    shared: new SecretToken("agent-key-0123456789"),
    issued: (key) =>
      Promise.resolve(key === "issued-k1" ? { tenant: "default", agentId: "k1" } : null),
  });
  const shared = await auth.authenticate(agentRequest("agent-key-0123456789"), "agent");
  assert.ok(shared.ok && shared.principal.subject === "agent" && shared.principal.may.agent);
  assert.ok(shared.ok && !shared.principal.may.publish && !shared.principal.may.admin);
  const issued = await auth.authenticate(agentRequest("issued-k1"), "agent");
  assert.ok(issued.ok && issued.principal.subject === "agent:k1");
  for (const key of [undefined, "", "wrong", "publish-token-0123456789"]) {
    const refused = await auth.authenticate(agentRequest(key), "agent");
    assert.ok(!refused.ok && refused.refusal.code === "unauthorized", `key ${key}`);
  }
  const noAgents = new PublishTokenAuth(new SecretToken("publish-token-0123456789"));
  assert.equal(
    (await noAgents.authenticate(agentRequest("agent-key-0123456789"), "agent")).ok,
    false,
  );
});

Deno.test("auth seam: control access needs the publish token in the none mode, and grants admin", async () => {
  const auth = new PublishTokenAuth(new SecretToken("publish-token-0123456789"));
  const post = (token?: string) =>
    new Request("http://hub/agents/k1/commands", {
      method: "POST",
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    });
  const ok = await auth.authenticate(post("publish-token-0123456789"), "control");
  assert.ok(ok.ok && ok.principal.may.admin);
  const refused = await auth.authenticate(post("agent-key-0123456789"), "control");
  assert.ok(!refused.ok && refused.refusal.message.includes("commanding agents"));
  assert.equal((await auth.authenticate(post(), "control")).ok, false);
});
