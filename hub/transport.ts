/**
 * What the hub needs from a socket. The WebSocket and SSE adapters in `server/` implement it;
 * the hub never imports either.
 * @module
 */

/**
 * One frame to write, with what the hub already knows about it, so an adapter never parses
 * the frame: its message `type` (the event type for events) and, for events, the `seq` cursor.
 * The frame is serialized once per event and shared by every client it goes to.
 */
export interface Outgoing {
  readonly frame: string;
  readonly type: string;
  readonly seq?: string;
}

/** A connection's write side. */
export interface Transport {
  /** Writes one frame. Must not block; may buffer (see `bufferedAmount`). */
  send(outgoing: Outgoing): void;
  /** Bytes accepted by `send` but not yet written to the network. */
  readonly bufferedAmount: number;
  /** Ends the connection with a close code and reason. Safe to call more than once. */
  close(code: number, reason: string): void;
}
