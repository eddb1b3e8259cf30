/**
 * Test clients for `GET /events/stream`: a real SSE reader over fetch, and a stalled one on a
 * raw TCP connection that sends the request and reads only when told to.
 * @module
 */
import { waitFor } from "./_harness.ts";

export interface SseMessage {
  event: string;
  id: string | null;
  // deno-lint-ignore no-explicit-any
  data: any;
}

/** A real SSE reader over fetch: parses messages and comments as they arrive. */
export class SseReader {
  readonly messages: SseMessage[] = [];
  readonly comments: string[] = [];
  readonly response: Response;
  readonly #abort: AbortController;
  readonly #done: Promise<void>;

  private constructor(response: Response, abort: AbortController) {
    this.response = response;
    this.#abort = abort;
    this.#done = this.#read();
  }

  static async open(url: string, headers: Record<string, string> = {}): Promise<SseReader> {
    const abort = new AbortController();
    const response = await fetch(url, { headers, signal: abort.signal });
    return new SseReader(response, abort);
  }

  get events(): SseMessage[] {
    return this.messages.filter((message) => message.id !== null);
  }

  async #read(): Promise<void> {
    const decoder = new TextDecoder();
    let pending = "";
    try {
      for await (const chunk of this.response.body!) {
        pending += decoder.decode(chunk, { stream: true });
        let end;
        while ((end = pending.indexOf("\n\n")) !== -1) {
          const block = pending.slice(0, end);
          pending = pending.slice(end + 2);
          if (block.startsWith(": ")) {
            this.comments.push(block.slice(2));
            continue;
          }
          const fields = new Map(
            block.split("\n").map((line) => {
              const colon = line.indexOf(": ");
              return [line.slice(0, colon), line.slice(colon + 2)] as const;
            }),
          );
          this.messages.push({
            event: fields.get("event") ?? "message",
            id: fields.get("id") ?? null,
            data: JSON.parse(fields.get("data") ?? "null"),
          });
        }
      }
    } catch {
      // Aborted by close().
    }
  }

  waitForEvents(count: number, timeoutMs?: number): Promise<SseMessage[]> {
    return waitFor(
      () => (this.events.length >= count ? this.events : null),
      `${count} SSE events (have ${this.events.length})`,
      timeoutMs,
    );
  }

  async close(): Promise<void> {
    this.#abort.abort();
    await this.#done;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** An SSE request on a raw TCP connection that is not read until `readToEnd`. */
export class StalledSseClient {
  readonly conn: Deno.TcpConn;

  private constructor(conn: Deno.TcpConn) {
    this.conn = conn;
  }

  /** Sends `GET path` (HTTP/1.0, so the stream's end closes the connection) and reads nothing. */
  static async open(port: number, path = "/events/stream"): Promise<StalledSseClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const request = `GET ${path} HTTP/1.0\r\nHost: 127.0.0.1:${port}\r\n\r\n`;
    const bytes = new TextEncoder().encode(request);
    for (let written = 0; written < bytes.length;) {
      written += await conn.write(bytes.subarray(written));
    }
    return new StalledSseClient(conn);
  }

  /** Resumes reading: everything the server sent, up to the connection's end. */
  readToEnd(): Promise<string> {
    return new Response(this.conn.readable).text();
  }

  /** Closes the connection (so a hub shutting down does not wait for it to read). */
  [Symbol.dispose](): void {
    try {
      this.conn.close();
    } catch {
      // Already closed by readToEnd.
    }
  }
}
