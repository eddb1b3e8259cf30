/**
 * A WebSocket client on a raw TCP connection: it completes the handshake and then reads only
 * when told to. It is the stalled client of the slow-consumer tests (a real peer that stops
 * reading, so the kernel buffers fill and the server sees back-pressure) and lets tests send
 * handshakes with any headers.
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A server frame. Opcodes: 1 text, 2 binary, 8 close, 9 ping, 10 pong. */
export interface RawFrame {
  readonly opcode: number;
  readonly data: Uint8Array;
}

/** A handshake's answer: the status and the connection (open when 101). */
export interface RawHandshake {
  readonly status: number;
  readonly headers: string;
  readonly socket: RawWebSocket;
}

/** A WebSocket client whose reads are explicit. */
export class RawWebSocket {
  readonly conn: Deno.TcpConn;
  #buffer: Uint8Array;

  private constructor(conn: Deno.TcpConn, leftover: Uint8Array) {
    this.conn = conn;
    this.#buffer = leftover;
  }

  /** Sends an upgrade request for `path` with `headers` and reads the response head. */
  static async handshake(
    port: number,
    path = "/ws",
    headers: Record<string, string> = {},
  ): Promise<RawHandshake> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    const lines = [
      `GET ${path} HTTP/1.1`,
      `Host: 127.0.0.1:${port}`,
      "Upgrade: websocket",
      "Connection: Upgrade",
      `Sec-WebSocket-Key: ${key}`,
      "Sec-WebSocket-Version: 13",
      ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    ];
    await writeAll(conn, encoder.encode(lines.join("\r\n") + "\r\n\r\n"));
    let head: Uint8Array = new Uint8Array();
    for (;;) {
      const chunk = new Uint8Array(4096);
      const read = await conn.read(chunk);
      if (read === null) throw new Error("Connection closed during the handshake");
      head = concat(head, chunk.subarray(0, read));
      const end = indexOfHeadEnd(head);
      if (end !== -1) {
        const text = decoder.decode(head.subarray(0, end));
        const status = Number(text.split(" ")[1]);
        return { status, headers: text, socket: new RawWebSocket(conn, head.subarray(end + 4)) };
      }
    }
  }

  /** Sends a masked text frame. */
  async sendText(text: string): Promise<void> {
    await this.#sendFrame(1, encoder.encode(text));
  }

  /** Sends masked text frames in one write (a flood without a round trip per frame). */
  async sendTexts(texts: readonly string[]): Promise<void> {
    const frames = texts.map((text) => encodeFrame(1, encoder.encode(text)));
    const bytes = new Uint8Array(frames.reduce((sum, frame) => sum + frame.byteLength, 0));
    let offset = 0;
    for (const frame of frames) {
      bytes.set(frame, offset);
      offset += frame.byteLength;
    }
    await writeAll(this.conn, bytes);
  }

  /** Sends a masked frame with any opcode (2 binary, 10 pong...). */
  async #sendFrame(opcode: number, payload: Uint8Array): Promise<void> {
    await writeAll(this.conn, encodeFrame(opcode, payload));
  }

  /** Sends a frame as given: any opcode, any flags in the first byte (fuzzing). */
  async sendRaw(firstByte: number, payload: Uint8Array): Promise<void> {
    const frame = encodeFrame(0, payload);
    frame[0] = firstByte;
    await writeAll(this.conn, frame);
  }

  /** Sends a masked binary frame. */
  sendBinary(payload: Uint8Array): Promise<void> {
    return this.#sendFrame(2, payload);
  }

  /** Reads the next frame; null when the connection ended. */
  async readFrame(): Promise<RawFrame | null> {
    for (;;) {
      const frame = this.#parse();
      if (frame !== undefined) return frame;
      const chunk = new Uint8Array(65536);
      let read: number | null;
      try {
        read = await this.conn.read(chunk);
      } catch {
        return null;
      }
      if (read === null) return null;
      this.#buffer = concat(this.#buffer, chunk.subarray(0, read));
    }
  }

  /** Reads frames until a close frame or the end; returns the text frames and the close code. */
  async readUntilClose(): Promise<{ texts: string[]; closeCode: number | null }> {
    const texts: string[] = [];
    for (;;) {
      const frame = await this.readFrame();
      if (frame === null) return { texts, closeCode: null };
      if (frame.opcode === 1) texts.push(decoder.decode(frame.data));
      if (frame.opcode === 8) {
        const code = frame.data.byteLength >= 2 ? (frame.data[0]! << 8) | frame.data[1]! : null;
        return { texts, closeCode: code };
      }
    }
  }

  /** Reads text frames until one satisfies `done`; returns all text frames read. */
  async readTextsUntil(done: (text: string) => boolean): Promise<string[]> {
    const texts: string[] = [];
    for (;;) {
      const frame = await this.readFrame();
      if (frame === null || frame.opcode === 8) {
        throw new Error(`Closed after ${texts.length} frames`);
      }
      if (frame.opcode !== 1) continue;
      const text = decoder.decode(frame.data);
      texts.push(text);
      if (done(text)) return texts;
    }
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }

  #parse(): RawFrame | undefined {
    const buffer = this.#buffer;
    if (buffer.byteLength < 2) return undefined;
    let length = buffer[1]! & 0x7f;
    let offset = 2;
    if (length === 126) {
      if (buffer.byteLength < 4) return undefined;
      length = (buffer[2]! << 8) | buffer[3]!;
      offset = 4;
    } else if (length === 127) {
      if (buffer.byteLength < 10) return undefined;
      length = Number(new DataView(buffer.buffer, buffer.byteOffset + 2, 8).getBigUint64(0));
      offset = 10;
    }
    if (buffer.byteLength < offset + length) return undefined;
    const frame = { opcode: buffer[0]! & 0x0f, data: buffer.slice(offset, offset + length) };
    this.#buffer = buffer.slice(offset + length);
    return frame;
  }
}

/** One masked client frame with FIN set. */
function encodeFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const mask = crypto.getRandomValues(new Uint8Array(4));
  const length = payload.byteLength;
  const header = length < 126
    ? new Uint8Array([0x80 | opcode, 0x80 | length])
    : length < 65536
    ? new Uint8Array([0x80 | opcode, 0x80 | 126, length >> 8, length & 0xff])
    : (() => {
      const bytes = new Uint8Array(10);
      bytes[0] = 0x80 | opcode;
      bytes[1] = 0x80 | 127;
      new DataView(bytes.buffer).setBigUint64(2, BigInt(length));
      return bytes;
    })();
  const masked = payload.map((byte, index) => byte ^ mask[index % 4]!);
  return concat(concat(header, mask), masked);
}

async function writeAll(conn: Deno.TcpConn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.byteLength) written += await conn.write(bytes.subarray(written));
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}

function indexOfHeadEnd(bytes: Uint8Array): number {
  for (let index = 0; index + 3 < bytes.byteLength; index++) {
    if (
      bytes[index] === 13 && bytes[index + 1] === 10 && bytes[index + 2] === 13 &&
      bytes[index + 3] === 10
    ) {
      return index;
    }
  }
  return -1;
}

/** What a raw HTTP exchange got back: the status (0 when none came) and the whole answer. */
export interface RawAnswer {
  readonly status: number;
  readonly text: string;
  /** The server ended the connection (as opposed to the read timing out). */
  readonly closed: boolean;
}

/**
 * Sends `request` (any bytes: a request line and headers of any shape) on a new TCP connection
 * and reads until the server closes it, a response with a `content-length` is complete, or
 * `timeoutMs` passes.
 */
export async function rawRequest(
  port: number,
  request: string | Uint8Array,
  timeoutMs = 2000,
): Promise<RawAnswer> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let answer = new Uint8Array();
  let closed = false;
  const timer = setTimeout(() => {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }, timeoutMs);
  try {
    await writeAll(conn, typeof request === "string" ? encoder.encode(request) : request);
    for (;;) {
      const chunk = new Uint8Array(65536);
      const read = await conn.read(chunk);
      if (read === null) {
        closed = true;
        break;
      }
      answer = concat(answer, chunk.subarray(0, read));
      if (responseComplete(answer)) break;
    }
  } catch {
    // Reset by the server, or closed by the timer.
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
  const text = decoder.decode(answer);
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
  return { status, text, closed };
}

/** True when `bytes` hold a whole response head and the `content-length` bytes after it. */
function responseComplete(bytes: Uint8Array): boolean {
  const end = indexOfHeadEnd(bytes);
  if (end === -1) return false;
  const length = /\r\ncontent-length: *(\d+)/i.exec(decoder.decode(bytes.subarray(0, end)));
  return length !== null && bytes.byteLength >= end + 4 + Number(length[1]);
}
