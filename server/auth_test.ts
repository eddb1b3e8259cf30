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
  const none = new PublishTokenAuth(new SecretToken("publish-token-0123456789"));
  const noneAgent = await none.authenticate(
    new Request("http://hub/agents", {
      headers: { "x-agent-api-key": "publish-token-0123456789" },
    }),
    "agent",
  );
  assert.ok(noneAgent.ok && noneAgent.principal.may.agent, "none mode: the publish token");
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
