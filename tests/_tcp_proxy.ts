/**
 * A loopback TCP proxy the tests put between a client and a hub, so that they decide when the
 * client can reach the hub again (a reconnect then lands exactly when the test wants it) and
 * which hub process it reaches (a restarted hub may listen on another port).
 * @module
 */

/** A proxy on a free loopback port. */
export interface TcpProxy {
  readonly port: number;
  readonly url: string;
  /** While down, every new connection is closed at once and open ones are cut. */
  down(): void;
  /**
   * Like `down` for new connections, but open ones end only when a side ends them: after the hub
   * stopped, what it wrote last (its close frame) still reaches the client. Cutting them at once
   * raced that last write, and the client saw 1006 instead of 1001.
   */
  refuse(): void;
  /** Forwards new connections to `targetPort`. */
  up(targetPort: number): void;
  /** Connections accepted while up (each a connect attempt that reached a hub). */
  readonly forwarded: number;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts a proxy forwarding to `targetPort`. */
export function startProxy(targetPort: number): TcpProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  let target: number | null = targetPort;
  let forwarded = 0;
  const open = new Set<Deno.Conn>();
  const piping = new Set<Promise<void>>();
  const closeQuietly = (conn: Deno.Conn) => {
    open.delete(conn);
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  };
  const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
    try {
      await from.readable.pipeTo(to.writable, { preventClose: true });
    } catch {
      // Either side went away.
    }
    closeQuietly(from);
    closeQuietly(to);
  };
  const serve = async (conn: Deno.Conn) => {
    if (target === null) return closeQuietly(conn);
    let upstream: Deno.Conn;
    try {
      upstream = await Deno.connect({ hostname: "127.0.0.1", port: target });
    } catch {
      return closeQuietly(conn);
    }
    forwarded++;
    open.add(conn);
    open.add(upstream);
    await Promise.all([pipe(conn, upstream), pipe(upstream, conn)]);
  };
  const accepting = (async () => {
    for await (const conn of listener) {
      const task = serve(conn);
      piping.add(task);
      task.finally(() => piping.delete(task));
    }
  })();
  const close = async () => {
    target = null;
    listener.close();
    for (const conn of [...open]) closeQuietly(conn);
    await accepting.catch(() => {});
    await Promise.all(piping);
  };
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    down() {
      target = null;
      for (const conn of [...open]) closeQuietly(conn);
    },
    refuse() {
      target = null;
    },
    up(port: number) {
      target = port;
    },
    get forwarded() {
      return forwarded;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
