import assert from "node:assert/strict";
import { SocketTransport } from "./websocket.ts";

/** A stand-in for Deno's server WebSocket: a buffer that drains when told, and its closes. */
class FakeSocket {
  readyState: number = WebSocket.OPEN;
  bufferedAmount = 0;
  readonly closes: [number, string][] = [];
  close(code: number, reason: string): void {
    this.closes.push([code, reason]);
    this.readyState = WebSocket.CLOSING;
  }
}

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("a close behind buffered frames waits until they are written, then sends the close frame", async () => {
  const socket = new FakeSocket();
  socket.bufferedAmount = 1_000_000;
  const transport = new SocketTransport(socket as unknown as WebSocket, 5_000, 5);
  transport.close(4008, "slow consumer");
  await tick(30);
  // Deno would tear the socket down at the client's next message, dropping the close frame.
  assert.deepEqual(socket.closes, [], "not closed while frames are still buffered");
  socket.bufferedAmount = 0;
  await tick(30);
  assert.deepEqual(socket.closes, [[4008, "slow consumer"]]);
});

Deno.test("a close waits at most the linger time, and a shutdown or an empty buffer does not wait", async () => {
  const stuck = new FakeSocket();
  stuck.bufferedAmount = 1;
  new SocketTransport(stuck as unknown as WebSocket, 40, 5).close(4008, "slow consumer");
  await tick(100);
  assert.deepEqual(stuck.closes, [[4008, "slow consumer"]]);
  const shutdown = new FakeSocket();
  shutdown.bufferedAmount = 1;
  new SocketTransport(shutdown as unknown as WebSocket, 5_000, 5).close(1001, "bye");
  assert.deepEqual(shutdown.closes, [[1001, "bye"]]);
  const idle = new FakeSocket();
  new SocketTransport(idle as unknown as WebSocket, 5_000, 5).close(4008, "slow consumer");
  assert.deepEqual(idle.closes, [[4008, "slow consumer"]]);
});
