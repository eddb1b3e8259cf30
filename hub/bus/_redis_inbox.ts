/**
 * Directed messages of the redis bus: each node subscribes to its own pub/sub channel
 * `<prefix>:node:<node>` on a connection of its own, and a sender publishes to the channel of
 * the node it addresses. Pub/sub fits this contract (at most once, in order per sender, lost
 * when the node is gone) where the stream fits events (every node, replayable).
 * @module
 */

import type { createClient } from "redis";
import { getLogger } from "@logtape/logtape";
import { type BusReceiver, BusUnavailableError, type DirectedMessage } from "./bus.ts";

type Client = ReturnType<typeof createClient>;

const log = getLogger(["herald", "bus"]);

/** One node's inbox, and the way to send to any other node's. */
export class RedisInbox {
  readonly #node: string;
  readonly #prefix: string;
  readonly #writer: Client;
  readonly #subscriber: Client;
  #stopped = false;

  /** `writer`: the bus's command connection; the inbox subscribes on a duplicate of it. */
  constructor(writer: Client, prefix: string, node: string) {
    this.#writer = writer;
    this.#prefix = prefix;
    this.#node = node;
    this.#subscriber = writer.duplicate();
    // Reconnects are the writer's business; errors are reported there.
    this.#subscriber.on("error", () => {});
  }

  #channel(node: string): string {
    return `${this.#prefix}:node:${node}`;
  }

  /** Subscribes to this node's channel (connecting in the background, with retries). */
  async start(receiver: BusReceiver): Promise<void> {
    try {
      await this.#subscriber.connect();
      await this.#subscriber.subscribe(this.#channel(this.#node), (text: string) => {
        let parsed: { o: string; m: DirectedMessage };
        try {
          parsed = JSON.parse(text);
        } catch {
          log.warn("Ignored a directed message that is not JSON");
          return;
        }
        receiver.message(parsed.o, parsed.m);
      });
    } catch (error) {
      if (!this.#stopped) log.error("Redis inbox could not subscribe: {error}", { error });
    }
  }

  /** Publishes to node `to`'s channel; rejects when Redis is unreachable. */
  async send(to: string, message: DirectedMessage): Promise<void> {
    if (!this.#writer.isReady) {
      throw new BusUnavailableError("The event bus (Redis) is unreachable; retry later");
    }
    try {
      await this.#writer.publish(this.#channel(to), JSON.stringify({ o: this.#node, m: message }));
    } catch (error) {
      throw new BusUnavailableError(`The event bus (Redis) failed to send: ${error}`);
    }
  }

  close(): void {
    this.#stopped = true;
    try {
      this.#subscriber.destroy();
    } catch {
      // Never connected.
    }
  }
}
