/**
 * The container, Compose, Kubernetes and systemd files, checked without a container runtime:
 * every file parses, every environment variable they set is a setting Herald reads and holds
 * a value it accepts, and ports, paths, probes and timeouts agree with the code (probe paths
 * are asked of a real hub). The image's file layout is rebuilt from the Dockerfile's COPY lines
 * and run with its own RUN, CMD and HEALTHCHECK commands.
 */
import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import { type Config, loadConfig, SETTINGS } from "../server/config.ts";
import { startTestHub } from "./_harness.ts";
import {
  baseEnv,
  copyFiles,
  drainsOn,
  envFile,
  launch,
  localModules,
  ROOT,
  smoke,
} from "./_deploy.ts";

// deno-lint-ignore no-explicit-any
type Yaml = any;

const read = (path: string) => Deno.readTextFile(`${ROOT}${path}`);

/** Every document of a YAML file; fails on any parse error. */
async function yamlDocuments(path: string): Promise<Yaml[]> {
  const documents = parseAllDocuments(await read(path), { merge: true }); // Compose uses <<
  for (const document of documents) {
    assert.deepEqual(document.errors.map((error) => error.message), [], path);
  }
  return documents.map((document) => document.toJS({ maxAliasCount: 100 }));
}

/** Dockerfile instructions, continuation lines joined, comments dropped. */
async function dockerfile(): Promise<{ instruction: string; args: string }[]> {
  const text = (await read("Dockerfile")).replace(/\\\n/g, " ");
  return text.split("\n").filter((line) => line.trim() !== "" && !line.startsWith("#")).map(
    (line) => {
      const [instruction, ...rest] = line.trim().split(/\s+/);
      return { instruction: instruction!.toUpperCase(), args: rest.join(" ") };
    },
  );
}

/** nginx directives as `[name, ...args]`, in order, braces checked. */
async function nginxDirectives(path: string): Promise<string[][]> {
  const text = (await read(path)).replace(/#.*$/gm, "");
  const tokens = text.match(/'[^']*'|"[^"]*"|[{};]|[^\s{};]+/g) ?? [];
  const directives: string[][] = [];
  let current: string[] = [];
  let depth = 0;
  for (const token of tokens) {
    if (token === "{" || token === ";") {
      assert.ok(current.length > 0, `${path}: ${token} without a directive`);
      directives.push(current);
      current = [];
      if (token === "{") depth++;
    } else if (token === "}") {
      assert.deepEqual(current, [], `${path}: directive without ';' before '}'`);
      depth--;
      assert.ok(depth >= 0, `${path}: unbalanced '}'`);
    } else {
      current.push(token);
    }
  }
  assert.equal(depth, 0, `${path}: unbalanced braces`);
  assert.deepEqual(current, [], `${path}: trailing directive without ';'`);
  return directives;
}

/** A systemd unit: section -> key -> values (keys may repeat). */
async function systemdUnit(path: string): Promise<Map<string, Map<string, string[]>>> {
  const sections = new Map<string, Map<string, string[]>>();
  let section: Map<string, string[]> | undefined;
  for (const raw of (await read(path)).split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const header = line.match(/^\[(\w+)\]$/);
    if (header) {
      sections.set(header[1]!, section = new Map());
      continue;
    }
    const equals = line.indexOf("=");
    assert.ok(section !== undefined && equals > 0, `${path}: not key=value: ${line}`);
    const key = line.slice(0, equals);
    section.set(key, [...(section.get(key) ?? []), line.slice(equals + 1)]);
  }
  return sections;
}

const SETTING_NAMES = new Set(Object.values(SETTINGS).map((setting) => setting.env));
/** A stand-in for secrets the files take from elsewhere. */
const SECRET = "deploy-test-secret-0123456789abcdef";

/** Checks every variable is a setting Herald reads, then loads them; returns the config. */
function settingsOf(where: string, env: Record<string, string>): Config {
  for (const name of Object.keys(env)) {
    assert.ok(SETTING_NAMES.has(name), `${where} sets ${name}, which Herald does not read`);
  }
  return loadConfig(env); // throws ConfigError on any value Herald would refuse
}

/** The `deno run` permission flags of `deno task start`. */
async function startFlags(): Promise<string[]> {
  const { tasks } = JSON.parse(await read("deno.json"));
  return (tasks.start as string).split(" ").filter((word) => word.startsWith("--allow-"));
}

/** Seconds of an nginx or Compose duration (`120s`, `2m`, `15s`). */
function seconds(duration: string): number {
  const match = duration.match(/^(\d+)(ms|s|m|h)?$/);
  assert.ok(match, `not a duration: ${duration}`);
  const scale = { ms: 0.001, s: 1, m: 60, h: 3600 }[match[2] as "s" ?? "s"] ?? 1;
  return Number(match[1]) * scale;
}

/** Bytes of an nginx size (`1m`, `512k`, `1048576`). */
function bytes(size: string): number {
  const match = size.toLowerCase().match(/^(\d+)([kmg])?$/);
  assert.ok(match, `not a size: ${size}`);
  return Number(match[1]) * ({ k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[match[2] as "k"] ?? 1);
}

/** Paths that must answer 200 on a running hub, and /ready 503 once it drains. */
async function probeAnswers(paths: string[]): Promise<void> {
  await using hub = startTestHub();
  for (const path of paths) {
    const response = await fetch(`${hub.url}${path}`);
    await response.body?.cancel();
    assert.equal(response.status, 200, `GET ${path}`);
  }
  await hub.app.drain();
  const ready = await fetch(`${hub.url}/ready`);
  await ready.body?.cancel();
  assert.equal(ready.status, 503, "a draining hub leaves the load balancer");
}

/** The image's ENV as settings, and its other instructions. */
async function image() {
  const instructions = await dockerfile();
  const all = (name: string) => instructions.filter((entry) => entry.instruction === name);
  const env: Record<string, string> = {};
  for (const { args } of all("ENV")) {
    for (const pair of args.match(/[\w]+=("[^"]*"|\S+)/g) ?? []) {
      const equals = pair.indexOf("=");
      env[pair.slice(0, equals)] = pair.slice(equals + 1).replace(/^"|"$/g, "");
    }
  }
  return { instructions, all, env };
}

Deno.test("Dockerfile: pinned official image, non-root, cached deps, health check and drain", async () => {
  const { instructions, all, env } = await image();
  assert.equal(instructions[0]?.instruction, "FROM");
  assert.equal(instructions[0]?.args, `denoland/deno:${Deno.version.deno}`, "the Deno of CI");
  const config = settingsOf("Dockerfile ENV", env);
  assert.deepEqual(all("EXPOSE").map((entry) => Number(entry.args)), [config.port]);
  const users = all("USER").map((entry) => entry.args);
  assert.deepEqual(users, ["deno"], "runs as the image's own non-root user");
  const userAt = instructions.findIndex((entry) => entry.instruction === "USER");
  const install = instructions.findIndex((entry) =>
    entry.instruction === "RUN" && /deno install --frozen --entrypoint main\.ts/.test(entry.args)
  );
  assert.ok(install > userAt, "dependencies are cached at build time, as the user that runs");
  assert.match(all("HEALTHCHECK")[0]?.args ?? "", /deploy\/healthcheck\.ts/);
  assert.deepEqual(all("STOPSIGNAL").map((entry) => entry.args), ["SIGTERM"]);
  assert.ok(
    config.shutdownTimeoutMs < 10_000,
    "the drain ends before docker stop's default 10 s grace period",
  );
  const cmd: string[] = JSON.parse(all("CMD")[0]!.args);
  assert.deepEqual(cmd.filter((arg) => arg.startsWith("--allow-")), await startFlags());
  assert.equal(cmd.at(-1), "main.ts");
});

Deno.test("Dockerfile: COPY brings every module main.ts reaches; .dockerignore drops none of it", async () => {
  const { all } = await image();
  const sources = all("COPY").flatMap((entry) => entry.args.split(/\s+/).slice(0, -1));
  const copied = (file: string) =>
    sources.some((source) => source.endsWith("/") ? file.startsWith(source) : file === source);
  for (const module of [...await localModules(), "deno.lock", "deploy/healthcheck.ts"]) {
    assert.ok(copied(module), `the image lacks ${module}`);
  }
  const ignored = (await read(".dockerignore")).split("\n")
    .filter((line) => line.trim() !== "" && !line.startsWith("#"));
  for (const source of sources) {
    const top = source.split("/")[0]!;
    assert.ok(!ignored.includes(top) && !ignored.includes(source), `.dockerignore drops ${source}`);
  }
});

Deno.test("the image's layout runs: its RUN caches, its CMD serves, its HEALTHCHECK sees it, SIGTERM drains", async () => {
  const { all, env } = await image();
  const app = await Deno.makeTempDir({ prefix: "herald-image-" });
  const data = await Deno.makeTempDir({ prefix: "herald-data-" });
  try {
    for (const { args } of all("COPY")) {
      const parts = args.split(/\s+/);
      const destination = parts.pop()!.replace(/^\.\/?/, "");
      for (const source of parts) {
        const files = source.endsWith("/")
          ? (await localModules()).filter((file) => file.startsWith(source))
          : [source];
        await copyFiles(files, app);
        if (!source.endsWith("/") && destination !== "") {
          assert.ok(files.every((file) => file.startsWith(destination)), `COPY ${args}`);
        }
      }
    }
    for (const { args } of all("RUN")) {
      if (!args.startsWith("deno ")) continue; // image setup (mkdir, chown)
      const { code, stderr } = await new Deno.Command(Deno.execPath(), {
        args: args.split(/\s+/).slice(1),
        cwd: app,
        stderr: "piped",
      }).output();
      assert.equal(code, 0, `RUN ${args}: ${new TextDecoder().decode(stderr)}`);
    }
    const cmd: string[] = JSON.parse(all("CMD")[0]!.args);
    await using hub = await launch({
      command: Deno.execPath(), // the image's entrypoint runs `deno` for a `run` command
      args: cmd,
      cwd: app,
      env: { ...baseEnv(), ...env, PORT: "0", HERALD_HOSTNAME: "127.0.0.1", HERALD_DATA_DIR: data },
    });
    const healthcheck = JSON.parse(
      all("HEALTHCHECK")[0]!.args.replace(/^.*?CMD\s+/, ""),
    ) as string[];
    const check = (port: number) =>
      new Deno.Command(healthcheck[0] === "deno" ? Deno.execPath() : healthcheck[0]!, {
        args: healthcheck.slice(1),
        cwd: app,
        env: { ...baseEnv(), PORT: String(port) },
        clearEnv: true,
      }).output();
    assert.equal((await check(hub.port)).code, 0, "healthy while serving");
    const token = (await Deno.readTextFile(`${data}/publish-token`)).trim();
    await smoke(hub, token);
    await drainsOn(hub, "SIGTERM", 10_000);
    assert.equal((await check(hub.port)).code, 1, "unhealthy once stopped");
  } finally {
    await Deno.remove(app, { recursive: true });
    await Deno.remove(data, { recursive: true });
  }
});

Deno.test("compose.yaml: two hubs on one persistent Redis behind a proxy that upgrades WebSockets", async () => {
  const [compose] = await yamlDocuments("deploy/compose.yaml");
  const { env: imageEnv } = await image();
  const hubs = Object.entries(compose.services as Record<string, Yaml>)
    .filter(([, service]) => service.build !== undefined);
  assert.equal(hubs.length, 2, "two hubs");
  let hubConfig: Config | undefined;
  for (const [name, service] of hubs) {
    assert.equal(service.build.context, "..");
    await Deno.stat(`${ROOT}${service.build.dockerfile}`);
    const env: Record<string, string> = { ...imageEnv };
    for (const [key, value] of Object.entries(service.environment as Record<string, string>)) {
      env[key] = /^\$\{/.test(String(value)) ? SECRET : String(value);
    }
    hubConfig = settingsOf(`compose service ${name}`, env);
    assert.equal(hubConfig.bus, "redis");
    const redisHost = new URL(hubConfig.redisUrl);
    assert.ok(redisHost.hostname in compose.services, `${name} reaches Redis by service name`);
    assert.ok(
      seconds(service.stop_grace_period) * 1000 > hubConfig.shutdownTimeoutMs,
      "compose waits longer than the drain",
    );
    assert.equal(service.stop_signal, "SIGTERM");
  }
  const redis = compose.services.redis;
  assert.deepEqual(redis.command.slice(1, 3), ["--appendonly", "yes"], "Redis persists");
  assert.ok(redis.volumes.some((volume: string) => volume.endsWith(":/data")));

  const proxy = compose.services.proxy;
  const [mounted] = (proxy.volumes[0] as string).split(":");
  const directives = await nginxDirectives(`deploy/${mounted!.replace(/^\.\//, "")}`);
  const directive = (name: string) => directives.filter(([first]) => first === name);
  const upstreams = directive("server").filter((entry) =>
    entry.length > 1 && /:\d+$/.test(entry[1]!)
  );
  assert.deepEqual(
    upstreams.map((entry) => entry[1]).sort(),
    hubs.map(([name]) => `${name}:${hubConfig!.port}`).sort(),
    "the proxy balances over exactly the hubs, on their port",
  );
  for (const sticky of ["ip_hash", "hash", "sticky"]) {
    assert.deepEqual(directive(sticky), [], `no ${sticky}: any hub serves any client`);
  }
  const headers = directive("proxy_set_header").map((entry) => entry.slice(1).join(" "));
  assert.ok(headers.includes("Upgrade $http_upgrade"));
  assert.ok(headers.includes("Connection $connection_upgrade"));
  assert.deepEqual(directive("proxy_http_version").map((entry) => entry[1]), ["1.1"]);
  for (const timeout of ["proxy_read_timeout", "proxy_send_timeout"]) {
    const value = seconds(directive(timeout)[0]?.[1] ?? "60s"); // nginx's default is 60 s
    const heartbeat = Math.max(hubConfig!.pingIntervalSeconds, hubConfig!.sseHeartbeatSeconds);
    assert.ok(value > 2 * heartbeat, `${timeout} ${value}s leaves room above ${heartbeat}s`);
  }
  assert.deepEqual(directive("proxy_buffering").map((entry) => entry[1]), ["off"], "SSE");
  const bodyLimit = bytes(directive("client_max_body_size")[0]?.[1] ?? "1m");
  assert.ok(bodyLimit >= hubConfig!.maxBodyBytes, "the proxy lets the largest publish through");
  assert.ok(proxy.ports.some((port: string) => port.endsWith(":80")));
  assert.ok(directive("listen").some((entry) => entry[1] === "80"));
});

Deno.test("Kubernetes: probes, ports, grace period, PDB, Redis and scrape annotations match the code", async () => {
  const { resources } = (await yamlDocuments("deploy/kubernetes/kustomization.yaml"))[0];
  const objects: Yaml[] = [];
  for (const file of resources as string[]) {
    objects.push(...await yamlDocuments(`deploy/kubernetes/${file}`));
  }
  const find = (kind: string, name: string) =>
    objects.find((object) => object.kind === kind && object.metadata.name === name);
  const deployment = find("Deployment", "herald");
  const pod = deployment.spec.template;
  const [container] = pod.spec.containers;
  const env: Record<string, string> = {};
  for (const variable of container.env) {
    if (variable.valueFrom !== undefined) {
      assert.ok(variable.valueFrom.secretKeyRef, `${variable.name} comes from a Secret`);
      env[variable.name] = SECRET;
    } else {
      env[variable.name] = variable.value;
    }
  }
  const config = settingsOf("the herald Deployment", { ...(await image()).env, ...env });
  const [port] = container.ports;
  assert.equal(port.containerPort, config.port);
  assert.equal(Number(pod.metadata.annotations["prometheus.io/port"]), config.port);
  assert.equal(pod.metadata.annotations["prometheus.io/scrape"], "true");
  assert.equal(container.readinessProbe.httpGet.path, "/ready");
  assert.equal(container.livenessProbe.httpGet.path, "/health");
  for (const probe of [container.readinessProbe, container.livenessProbe, container.startupProbe]) {
    assert.equal(probe.httpGet.port, port.name);
  }
  await probeAnswers([
    container.readinessProbe.httpGet.path,
    container.livenessProbe.httpGet.path,
    container.startupProbe.httpGet.path,
    pod.metadata.annotations["prometheus.io/path"],
  ]);
  const preStopMs = (container.lifecycle?.preStop?.sleep?.seconds ?? 0) * 1000;
  assert.ok(
    pod.spec.terminationGracePeriodSeconds * 1000 > preStopMs + config.shutdownTimeoutMs,
    "the kubelet waits for the preStop pause and the whole drain",
  );
  const memory = (quantity: string) => bytes(quantity.replace(/i$/, "").toLowerCase());
  const { requests, limits } = container.resources;
  assert.ok(requests.cpu && requests.memory, "requests are set");
  assert.ok(memory(limits.memory) >= memory(requests.memory));

  const service = find("Service", "herald");
  assert.deepEqual(service.spec.selector, deployment.spec.selector.matchLabels);
  assert.deepEqual(pod.metadata.labels, { ...pod.metadata.labels, ...service.spec.selector });
  assert.equal(service.spec.ports[0].targetPort, port.name);
  assert.equal(service.spec.sessionAffinity ?? "None", "None", "no sticky sessions");
  const budget = find("PodDisruptionBudget", "herald");
  assert.deepEqual(budget.spec.selector, deployment.spec.selector);
  assert.ok(budget.spec.minAvailable >= 1 && budget.spec.minAvailable < deployment.spec.replicas);

  const redisUrl = new URL(config.redisUrl);
  const redisService = find("Service", redisUrl.hostname);
  assert.ok(redisService, `a Service named ${redisUrl.hostname} for HERALD_REDIS_URL`);
  assert.equal(redisService.spec.ports[0].port, Number(redisUrl.port || 6379));
  const redis = find("StatefulSet", redisUrl.hostname);
  assert.deepEqual(redis.spec.template.metadata.labels, redisService.spec.selector);
  assert.deepEqual(redis.spec.template.spec.containers[0].args.slice(0, 2), [
    "--appendonly",
    "yes",
  ]);
  assert.ok(redis.spec.volumeClaimTemplates.length > 0, "Redis data on a persistent volume");
});

Deno.test("systemd unit keeps its hardening, runs like deno task start and outlasts the drain", async () => {
  const unit = await systemdUnit("deploy/herald.service");
  const service = unit.get("Service")!;
  const one = (key: string) => service.get(key)?.[0];
  const env = Object.fromEntries((service.get("Environment") ?? []).map((pair) => {
    const equals = pair.indexOf("=");
    return [pair.slice(0, equals), pair.slice(equals + 1)];
  }));
  const config = settingsOf("herald.service", env);
  assert.ok(one("User") !== undefined && one("User") !== "root", "a dedicated user");
  assert.equal(one("NoNewPrivileges"), "true");
  assert.equal(one("ProtectSystem"), "strict");
  assert.ok(Number(one("LimitNOFILE")) >= 65536, "enough descriptors for many sockets");
  assert.equal(one("Restart"), "on-failure");
  assert.equal(one("KillSignal"), "SIGTERM");
  assert.ok(seconds(one("TimeoutStopSec")!) * 1000 > config.shutdownTimeoutMs);
  const exec = one("ExecStart")!.split(" ");
  assert.deepEqual(exec.filter((arg) => arg.startsWith("--allow-")), await startFlags());
  assert.equal(exec.at(-1), "main.ts");
  assert.ok(unit.get("Install")?.get("WantedBy")?.includes("multi-user.target"));
});

Deno.test("deno-deploy.env sets only settings Herald reads, with values it accepts", async () => {
  const env = await envFile("deploy/deno-deploy.env");
  for (const name of Object.keys(env)) {
    assert.doesNotMatch(name, /^(DENO_|LD_|OTEL_)/, "Deno Deploy refuses these prefixes");
  }
  settingsOf("deno-deploy.env", env);
});
