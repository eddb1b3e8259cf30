import assert from "node:assert/strict";
import type { LogRecord } from "@logtape/logtape";
import { redact, REDACTED, redactRecord, redactSecret } from "./log.ts";

const SECRET = "s3cret-publish-token-value-0001";
redactSecret(SECRET);

Deno.test("redact scrubs token= values, Authorization values, bearer tokens and registered secrets", () => {
  const cases = [
    `TypeError: Invalid URL: 'http://a b/ws?token=abcdef0123456789&topic=x'`,
    "GET /ws?topic=a&TOKEN=abcdef0123456789",
    "authorization: Bearer abcdef0123456789",
    `{"authorization":"Basic abcdef0123456789"}`,
    "sent bearer abcdef0123456789 again",
    `payload ${SECRET} inline`,
  ];
  for (const text of cases) {
    const out = redact(text);
    assert.ok(!out.includes("abcdef0123456789") && !out.includes(SECRET), out);
    assert.ok(out.includes(REDACTED), out);
  }
  assert.equal(redact("/ws?topic=a&since=1-2"), "/ws?topic=a&since=1-2");
});

Deno.test("redactRecord scrubs the message, the properties and errors in them", () => {
  const error = new TypeError(`Invalid URL: 'http://a b/ws?token=${SECRET}'`);
  const record: LogRecord = {
    category: ["herald", "test"],
    level: "error",
    message: ["failed: ", error, ""],
    rawMessage: "failed: {error}",
    properties: {
      error,
      url: `/ws?token=${SECRET}`,
      headers: { authorization: `Bearer ${SECRET}`, nested: [`x ${SECRET}`] },
      publishToken: "anything",
    },
    timestamp: Date.now(),
  };
  const text = JSON.stringify(
    redactRecord(record),
    (_key, value) =>
      value instanceof Error ? { message: value.message, stack: value.stack } : value,
  );
  assert.ok(!text.includes(SECRET), text);
  assert.ok(!text.includes("anything"), text);
});
