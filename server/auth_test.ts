import assert from "node:assert/strict";
import { PublishTokenAuth } from "./auth.ts";
import { SecretToken } from "./token.ts";

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
