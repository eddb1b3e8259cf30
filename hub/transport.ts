/**
 * What the hub needs from a socket. The WebSocket and SSE adapters in `server/` implement it;
 * the hub never imports either.
 * @module
 */

/** A connection's write side. */
export interface Transport {
  /** Writes one text frame. Must not block; may buffer (see `bufferedAmount`). */
  send(frame: string): void;
  /** Bytes accepted by `send` but not yet written to the network. */
  readonly bufferedAmount: number;
  /** Ends the connection with a close code and reason. Safe to call more than once. */
  close(code: number, reason: string): void;
}
