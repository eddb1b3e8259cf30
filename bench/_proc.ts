/**
 * What the operating system says about a process (Linux /proc): CPU time and resident memory,
 * and a description of the machine for the report.
 * @module
 */

let ticksPerSecond: number | null = null;

/** Clock ticks per second (`getconf CLK_TCK`), the unit of /proc/<pid>/stat times. */
export async function clockTicks(): Promise<number> {
  if (ticksPerSecond === null) {
    try {
      const output = await new Deno.Command("getconf", { args: ["CLK_TCK"] }).output();
      ticksPerSecond = Number(new TextDecoder().decode(output.stdout).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** CPU seconds (user + system, all threads) the process has used so far. */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  // Fields after the command name (which may hold spaces) start at field 3 (state).
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / await clockTicks();
}

/** Resident memory in bytes (VmRSS). */
export async function rssBytes(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kib = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  if (kib === undefined) throw new Error(`No VmRSS for process ${pid}`);
  return Number(kib) * 1024;
}

/** Polls `rss` until two readings 250 ms apart differ by less than 1%, or `maxMs` passes. */
export async function settledRss(rss: () => Promise<number>, maxMs: number): Promise<number> {
  const deadline = Date.now() + maxMs;
  let last = await rss();
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const now = await rss();
    if (Math.abs(now - last) < last * 0.01 || Date.now() > deadline) return now;
    last = now;
  }
}

/** Samples `rss` every `everyMs` until stopped; keeps the series and the peak. */
export class RssSampler {
  readonly series: [number, number][] = [];
  peak = 0;
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #started = performance.now();

  constructor(read: () => Promise<number>, everyMs: number) {
    this.#timer = setInterval(() => {
      read().then((rss) => {
        this.series.push([Math.round(performance.now() - this.#started), rss]);
        this.peak = Math.max(this.peak, rss);
      }, () => {});
    }, everyMs);
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/** The machine the numbers were measured on. */
export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memory: string;
  readonly kernel: string;
  readonly deno: string;
  readonly v8: string;
  /** Node's version (the peers' runtime), or "not installed". */
  readonly node: string;
  /** The peers' packages and versions as installed. */
  readonly peers: string;
  readonly load: string;
}

/** Reads the CPU model, core count, memory, kernel, runtime versions and current load. */
export async function describeMachine(): Promise<Machine> {
  const read = (path: string) => Deno.readTextFile(path).catch(() => "");
  const cpuinfo = await read("/proc/cpuinfo");
  const meminfo = await read("/proc/meminfo");
  const totalKib = Number(/^MemTotal:\s+(\d+)/m.exec(meminfo)?.[1] ?? 0);
  return {
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown",
    cores: (cpuinfo.match(/^processor\s*:/gm) ?? []).length,
    memory: `${(totalKib / 1024 / 1024).toFixed(1)} GiB`,
    kernel: (await read("/proc/sys/kernel/osrelease")).trim(),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    node: await new Deno.Command("node", { args: ["--version"] }).output().then(
      (output) => new TextDecoder().decode(output.stdout).trim().replace(/^v/, ""),
      () => "not installed",
    ),
    peers: await peerVersions(read),
    load: (await read("/proc/loadavg")).split(" ").slice(0, 3).join(" "),
  };
}

async function peerVersions(read: (path: string) => Promise<string>): Promise<string> {
  const versions = [];
  for (const name of ["ws", "socket.io"]) {
    const manifest = await read(
      new URL(`./peers/node_modules/${name}/package.json`, import.meta.url).pathname,
    );
    versions.push(`${name} ${manifest === "" ? "not installed" : JSON.parse(manifest).version}`);
  }
  return versions.join(", ");
}
