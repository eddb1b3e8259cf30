import assert from "node:assert/strict";
import { decodeEventInput, encodeEventFrame, isEventType } from "./envelope.ts";

Deno.test("event types: dotted, lower-case first segment, at most 128 characters", () => {
  for (const good of ["deploy.step", "cluster.nodeAdded", "session.state.changed", "a1.b-c_d"]) {
    assert.ok(isEventType(good), good);
  }
  for (
    const bad of [
      "deploy",
      "Deploy.step",
      ".step",
      "deploy.",
      "deploy step.x",
      "a." + "b".repeat(127),
    ]
  ) {
    assert.ok(!isEventType(bad), bad);
  }
});

Deno.test("decoding keeps what was published and defaults the payload to {}", () => {
  const decoded = decodeEventInput({ type: "app.restarted", appId: "web" }, { strict: false });
  assert.deepEqual(decoded, {
    ok: true,
    value: { type: "app.restarted", appId: "web", payload: {} },
  });
});

Deno.test("the frame omits absent fields and keeps the documented key order", () => {
  const frame = encodeEventFrame({
    tenant: "t",
    type: "deploy.queued",
    payload: { a: 1 },
    id: "i",
    seq: "s",
    timestamp: "2026-01-01T00:00:00.000Z",
  });
  assert.equal(
    frame,
    '{"type":"deploy.queued","payload":{"a":1},"id":"i","seq":"s","timestamp":"2026-01-01T00:00:00.000Z"}',
  );
});
