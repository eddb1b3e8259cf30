import assert from "node:assert/strict";
import fc from "fast-check";
import type { Reauthorize } from "../../hub/principal.ts";
import { hashToken, parseTokensFile, TokensFile } from "./tokens_file.ts";

const GOOD = { token: "s3cr3t-at-least-16-chars", tenant: "acme", name: "dash", scopes: ["agent"] };

Deno.test("tokens file: any JSON or text is a table or one message that never quotes a token", () => {
  const entry = fc.record({
    token: fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.constant("secret-token-value-0123"),
      fc.anything(),
    ),
    tenant: fc.oneof(fc.constantFrom("acme", "a:b", ""), fc.anything()),
    name: fc.oneof(fc.string({ maxLength: 5 }), fc.anything()),
    scopes: fc.oneof(
      fc.array(
        fc.constantFrom(
          "subscribe:*",
          "publish:deploy.*",
          "agent",
          "tenants:*",
          "bogus",
          "subscribe:Bad",
        ),
      ),
      fc.anything(),
    ),
  }, { requiredKeys: [] });
  const file = fc.oneof(
    fc.record({ tokens: fc.array(entry, { maxLength: 4 }) }).map((value) => JSON.stringify(value)),
    fc.jsonValue().map((value) => JSON.stringify(value)),
    fc.string({ maxLength: 200 }),
  );
  fc.assert(
    fc.property(file, (text) => {
      const parsed = parseTokensFile(text);
      if (typeof parsed === "string") {
        assert.ok(!parsed.includes("secret-token-value-0123"), parsed);
      } else {
        for (const principal of parsed.values()) assert.match(principal.tenant, /^[A-Za-z0-9]/);
      }
    }),
    { seed: 20261203, numRuns: 2000 },
  );
});

Deno.test("tokens file: a file past the size limit, unreadable or invalid keeps the previous tokens", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/tokens.json`;
  const outcomes: boolean[] = [];
  const file = new TokensFile(path, 1024, (ok) => outcomes.push(ok));
  try {
    await Deno.writeTextFile(path, JSON.stringify({ tokens: [GOOD] }));
    assert.equal(await file.reload(), true);
    assert.equal(file.lookup(GOOD.token)?.tenant, "acme");
    assert.equal(file.lookup(GOOD.token)?.may.agent, true);

    await Deno.writeTextFile(path, JSON.stringify({ tokens: [GOOD], pad: "x".repeat(2000) }));
    assert.equal(await file.reload(), false, "too large");
    await Deno.writeTextFile(path, JSON.stringify({ tokens: [GOOD, GOOD] }));
    assert.equal(await file.reload(), false, "duplicate token");
    await Deno.remove(path);
    assert.equal(await file.reload(), false, "missing");
    assert.equal(file.lookup(GOOD.token)?.subject, "dash", "the previous tokens stay");
    assert.equal(file.lookup("s3cr3t-at-least-16-charsX"), undefined);
    assert.deepEqual(outcomes, [true, false, false, false]);
    assert.equal(hashToken(GOOD.token).length, 64);
  } finally {
    file.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tokens file: after a good reload the listener maps each handed-out principal to its token's entry now, or null once removed", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/tokens.json`;
  const other = { ...GOOD, token: "another-token-0123456789", name: "other" };
  const file = new TokensFile(path, 1024);
  const heard: Reauthorize[] = [];
  file.onChange((reauthorize) => heard.push(reauthorize));
  try {
    await Deno.writeTextFile(path, JSON.stringify({ tokens: [GOOD, other] }));
    assert.equal(await file.reload(), true);
    const good = file.lookup(GOOD.token)!;
    const kept = file.lookup(other.token)!;
    await Deno.writeTextFile(path, JSON.stringify({ tokens: [other, GOOD] }));
    assert.equal(await file.reload(), true);
    assert.equal(heard.at(-1)!(good), good, "an entry that did not change stands as it was");
    // The same name under a new token is another credential: the old one is still revoked.
    const renamed = { ...GOOD, token: "rotated-token-0123456789" };
    await Deno.writeTextFile(path, JSON.stringify({ tokens: [renamed, { ...other, scopes: [] }] }));
    assert.equal(await file.reload(), true);
    await Deno.writeTextFile(path, "{ not json");
    assert.equal(await file.reload(), false);
    assert.equal(heard.length, 3, "a failed reload changes nothing and is not heard");
    const now = heard.at(-1)!;
    assert.equal(now(good), null);
    assert.deepEqual(
      now(kept)?.may.agent,
      false,
      "the entry of a token still present, as it is now",
    );
    const foreign = { ...good, subject: "agent" };
    assert.equal(now(foreign), foreign, "a principal the file did not hand out stands");
  } finally {
    file.close();
    await Deno.remove(dir, { recursive: true });
  }
});
