import assert from "node:assert/strict";
import { sseMessage, sseStream } from "./sse.ts";
import { encodeEventFrame } from "../../events/envelope.ts";

Deno.test("sseMessage names events by type and ids them by seq", () => {
  const frame = encodeEventFrame({
    tenant: "t",
    type: "deploy.step",
    appId: "web",
    payload: { note: ',"seq":"fake' },
    id: "i1",
    seq: "e1-7",
    timestamp: "2024-01-01T00:00:00.000Z",
  });
  assert.equal(
    sseMessage({ frame, type: "deploy.step", seq: "e1-7" }),
    `event: deploy.step\nid: e1-7\ndata: ${frame}\n\n`,
  );
  const lagged = '{"type":"lagged","payload":{"dropped":2,"reason":"drop_oldest"}}';
  assert.equal(sseMessage({ frame: lagged, type: "lagged" }), `event: lagged\ndata: ${lagged}\n\n`);
});

Deno.test("sse transport: bufferedAmount counts the bytes the reader has not taken", async () => {
  let cancelled = false;
  const stream = sseStream(() => (cancelled = true));
  assert.equal(stream.transport.bufferedAmount, 0);
  const pong = { frame: '{"type":"pong"}', type: "pong" };
  stream.transport.send(pong);
  stream.transport.send(pong);
  const one = new TextEncoder().encode(sseMessage(pong)).byteLength;
  assert.equal(stream.transport.bufferedAmount, 2 * one);
  const reader = stream.body.getReader();
  await reader.read();
  assert.equal(stream.transport.bufferedAmount, one);
  await reader.read();
  assert.equal(stream.transport.bufferedAmount, 0);
  await reader.cancel();
  assert.ok(cancelled);
  await stream.ended;
});
