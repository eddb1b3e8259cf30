/**
 * Shutdown under `deno serve --parallel`: every isolate receives SIGTERM, but the first one to
 * call `Deno.exit` ends the whole process. So isolates introduce themselves on a
 * `BroadcastChannel`, and each one exits only once every isolate it knows has finished its own
 * clean shutdown.
 * @module
 */

type LifecycleMessage = { readonly hello: string } | { readonly stopped: string };

/** The isolates of this process, as far as this one has heard. */
export class IsolateRoll {
  readonly #node: string;
  readonly #peers = new Set<string>();
  readonly #stopped = new Set<string>();
  readonly #channel: BroadcastChannel;
  /** Isolates `deno serve` starts besides this one, whether or not their hello arrived yet. */
  readonly #expectedPeers: number;
  #onChange: () => void = () => {};

  /**
   * `isolates` is how many `deno serve --parallel` starts (see {@linkcode parallelIsolates}):
   * a SIGTERM right after start must not find a peer whose hello has not arrived yet.
   */
  constructor(node: string, isolates = 1, channelName = "herald-lifecycle") {
    this.#node = node;
    this.#expectedPeers = Math.max(0, isolates - 1);
    this.#channel = new BroadcastChannel(channelName);
    this.#channel.onmessage = (event: MessageEvent<LifecycleMessage>) => {
      const message = event.data;
      if ("hello" in message) {
        if (this.#peers.has(message.hello)) return;
        this.#peers.add(message.hello);
        // Introduce ourselves to the newcomer (who started after our own hello).
        this.#channel.postMessage({ hello: this.#node } satisfies LifecycleMessage);
      } else {
        this.#stopped.add(message.stopped);
        this.#onChange();
      }
    };
    this.#channel.postMessage({ hello: node } satisfies LifecycleMessage);
  }

  /** Isolates this one knows besides itself. */
  get peers(): number {
    return this.#peers.size;
  }

  /** Says this isolate finished shutting down; resolves once every known isolate did. */
  stopped(): Promise<void> {
    this.#channel.postMessage({ stopped: this.#node } satisfies LifecycleMessage);
    return new Promise((resolve) => {
      const check = () => {
        if (this.#stopped.size < this.#expectedPeers) return;
        for (const peer of this.#peers) if (!this.#stopped.has(peer)) return;
        this.#channel.close();
        resolve();
      };
      this.#onChange = check;
      check();
    });
  }
}

/**
 * How many isolates `deno serve --parallel` runs: `DENO_JOBS` when set, else one per CPU (as
 * Deno itself decides).
 */
export function parallelIsolates(): number {
  const jobs = Number(Deno.env.get("DENO_JOBS"));
  return Number.isInteger(jobs) && jobs > 0 ? jobs : navigator.hardwareConcurrency;
}
