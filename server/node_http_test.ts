import assert from "node:assert/strict";
import { onSocketEnd } from "./node_http.ts";

Deno.test("onSocketEnd: ends once on error then close, and detaches every handler", () => {
  // A real WebSocket object whose handlers are set and read like the runtime's server sockets.
  const socket = new WebSocket("ws://127.0.0.1:9/never");
  socket.onerror = null;
  socket.onopen = () => {};
  socket.onmessage = () => {};
  let ended = 0;
  onSocketEnd(socket, () => ended++);
  const onerror = socket.onerror as unknown as (event: Event) => void;
  const onclose = socket.onclose as unknown as (event: Event) => void;
  onerror(new Event("error"));
  assert.equal(ended, 1);
  for (const handler of [socket.onopen, socket.onmessage, socket.onclose, socket.onerror]) {
    assert.equal(handler, null, "no handler keeps what it reaches alive");
  }
  onclose(new Event("close"));
  assert.equal(ended, 1, "a close after the error does not end it twice");
  socket.close();
});
