/**
 * The Node peers seen from the harness: installs them with npm at the versions pinned in
 * `bench/peers/package-lock.json` (into `bench/peers/node_modules/`, ignored by git), and starts
 * one as its own `node` process on an ephemeral loopback port.
 * @module
 */

import type { HubProcess } from "../../tests/_harness.ts";

/** The Node peers and their scripts. */
export const PEERS = {
  ws: "ws_hub.js",
  socketio: "socketio_hub.js",
} as const;
/** One of {@linkcode PEERS}. */
export type Peer = keyof typeof PEERS;

const DIR = new URL("./", import.meta.url).pathname;
const STAMP = `${DIR}node_modules/.herald-lock`;

/** Why the peers cannot run here (no node or npm), or null when they can. */
export async function peersMissing(): Promise<string | null> {
  for (const tool of ["node", "npm"]) {
    const found = await new Deno.Command("sh", { args: ["-c", `command -v ${tool}`] }).output()
      .then((output) => output.success, () => false);
    if (!found) return `${tool} is not installed`;
  }
  return null;
}

/**
 * Runs `npm ci` in bench/peers unless node_modules/ already holds what package-lock.json pins
 * (a copy of the lock file is kept there as a stamp).
 */
export async function installPeers(log: (line: string) => void = () => {}): Promise<void> {
  const lock = await Deno.readTextFile(`${DIR}package-lock.json`);
  const installed = await Deno.readTextFile(STAMP).catch(() => null);
  if (installed === lock) return;
  log("  installing the Node peers (npm ci in bench/peers)");
  const output = await new Deno.Command("npm", {
    args: ["ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
    cwd: DIR,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new Error(`npm ci in bench/peers failed:\n${new TextDecoder().decode(output.stderr)}`);
  }
  await Deno.writeTextFile(STAMP, lock);
}

/** The URL path (and fixed query) a receiver opens on `peer`, ending where its query goes on. */
export function socketPath(target: string): string {
  return target === "socketio" ? "/socket.io/?EIO=4&transport=websocket&" : "/ws?";
}

/** Starts `peer` with `node`; resolves once it logged its port. */
export async function spawnPeer(
  peer: Peer,
  env: Record<string, string> = {},
  nodeFlags: readonly string[] = [],
): Promise<HubProcess> {
  const child = new Deno.Command("node", {
    args: [...nodeFlags, `${DIR}${PEERS[peer]}`],
    env: { PORT: "0", HERALD_HOSTNAME: "127.0.0.1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const logs: string[] = [];
  let resolvePort: (port: number) => void;
  const portPromise = new Promise<number>((resolve) => (resolvePort = resolve));
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      for (const line of chunk.split("\n")) {
        if (line === "") continue;
        logs.push(line);
        try {
          const port = JSON.parse(line)?.properties?.port;
          if (typeof port === "number") resolvePort(port);
        } catch {
          // Not a JSON log line.
        }
      }
    }
  };
  const reading = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const port = await Promise.race([
    portPromise,
    child.status.then((s) => {
      throw new Error(`The ${peer} peer exited with ${s.code}:\n${logs.join("\n")}`);
    }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`The ${peer} peer did not listen within 15 s:\n${logs.join("\n")}`)),
        15_000,
      );
    }),
  ]).finally(() => clearTimeout(timer));
  let stopped: Promise<Deno.CommandStatus> | null = null;
  const stop = () => {
    stopped ??= (async () => {
      const kill = (signal: Deno.Signal) => {
        try {
          child.kill(signal);
        } catch {
          // Already exited.
        }
      };
      kill("SIGTERM");
      const hard = setTimeout(() => kill("SIGKILL"), 10_000);
      const status = await child.status;
      clearTimeout(hard);
      await reading;
      return status;
    })();
    return stopped;
  };
  return {
    child,
    port,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}${socketPath(peer).replace(/[?&]$/, "")}`,
    logs,
    rss: async () => {
      const statm = await Deno.readTextFile(`/proc/${child.pid}/statm`);
      return Number(statm.split(" ")[1]) * 4096;
    },
    stop,
    [Symbol.asyncDispose]: async () => void (await stop()),
  };
}
