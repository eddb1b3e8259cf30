/**
 * A bounded fuzz of raw TCP requests against a hub process: random request lines, Host headers,
 * upgrade headers and extra headers, with the publish token sprinkled in. Every answer must be a
 * documented status (never 500), nothing but structured log lines may reach stdout or stderr, no
 * line may hold the token, and file descriptors and memory must come back within a bound.
 * CI runs a short pass with a fixed seed; `deno task fuzz` runs a long one
 * with a random seed it prints (`HERALD_FUZZ_RUNS`, `HERALD_FUZZ_SEED` set either).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { spawnHub, TEST_TOKEN } from "./_harness.ts";
import { rawRequest } from "./_raw_ws.ts";

const LONG = Deno.args.includes("--long");
const SEED = Number(Deno.env.get("HERALD_FUZZ_SEED") ?? (LONG ? Date.now() % 2 ** 31 : 20261203));
const RUNS = Number(Deno.env.get("HERALD_FUZZ_RUNS") ?? (LONG ? 5000 : 150));
console.log(`handshake fuzz: seed ${SEED}, ${RUNS} runs (HERALD_FUZZ_SEED, HERALD_FUZZ_RUNS)`);

/** Statuses a request may get: Herald's documented ones, and hyper's own for broken heads. */
const DOCUMENTED = new Set([
  101,
  200,
  202,
  400,
  401,
  403,
  404,
  405,
  408,
  413,
  415,
  421,
  426,
  429,
  431,
]);

const printable = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)),
  maxLength: 40,
});

function requestArbitrary(port: number) {
  const method = fc.constantFrom("GET", "POST", "PUT", "OPTIONS", "HEAD", "DELETE", "G\tET");
  const path = fc.oneof(
    fc.constantFrom(
      "/ws",
      "/health",
      "/ready",
      "/state",
      "/apps",
      "/history",
      "/events",
      "/events/stream",
      "/metrics",
      "*",
      "/",
    ),
    fc.constantFrom("/apps/%E0%A4%A", "/apps/%ff", "/apps/%", "/apps/a%2Fb", "/ws?topic=%zz"),
    printable.map((text) => `/apps/${encodeURI(text)}`),
    printable.map((text) => `/${text.replace(/[\s]/g, "")}`),
  );
  const query = fc.constantFrom(
    "",
    `?token=${TEST_TOKEN}`,
    "?topic=*",
    `?since=x&token=${TEST_TOKEN}`,
    "?topic=",
  );
  const host = fc.oneof(
    fc.constant(`Host: 127.0.0.1:${port}`),
    fc.constant("Host: localhost"),
    fc.constantFrom(
      "Host: a b",
      "Host: evil.example",
      "Host:",
      "Host: [::1",
      "Host: 127.0.0.1:99999",
      `Host: ${TEST_TOKEN}@x`,
    ),
    printable.map((text) => `Host: ${text}`),
    fc.constant(null),
  );
  const upgrade = fc.subarray([
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
  ]);
  const extra = fc.array(
    fc.oneof(
      fc.constantFrom(
        `Authorization: Bearer ${TEST_TOKEN}`,
        `Authorization: ${TEST_TOKEN}`,
        "Authorization: Bearer wrong-token-000000000",
        "Upgrade: websocket, h2c",
        "Connection: keep-alive, Upgrade",
        "Sec-WebSocket-Key: short",
        "Sec-WebSocket-Version: 8",
        "Origin: https://evil.example",
        "Content-Type: application/json",
        "Content-Length: 5",
        "Content-Length: -1",
        "Transfer-Encoding: chunked",
        "Last-Event-ID: nope",
      ),
      fc.tuple(printable, printable).map(([name, value]) =>
        `X-${name.replace(/[^A-Za-z0-9-]/g, "")}: ${value}`
      ),
    ),
    { maxLength: 5 },
  );
  const body = fc.constantFrom("", `{"type":"a.b","payload":{"t":"${TEST_TOKEN}"}}`, "{", "hello");
  return fc.tuple(method, path, query, host, upgrade, extra, body).map(
    ([method, path, query, host, upgrade, extra, body]) => {
      const lines = [`${method} ${path}${path.includes("?") ? "" : query} HTTP/1.1`];
      if (host !== null) lines.push(host);
      lines.push(...upgrade, ...extra);
      if (body !== "" && !extra.some((line) => line.startsWith("Content-Length"))) {
        lines.push(`Content-Length: ${body.length}`);
      }
      return `${lines.join("\r\n")}\r\n\r\n${body}`;
    },
  );
}

async function openFds(pid: number): Promise<number> {
  let count = 0;
  for await (const _ of Deno.readDir(`/proc/${pid}/fd`)) count++;
  return count;
}

Deno.test("raw TCP handshake fuzz: documented statuses, structured logs only, no token, fds and RSS back", async () => {
  const hub = await spawnHub({ HERALD_LOG_LEVEL: "debug" });
  const pid = hub.child.pid;
  try {
    const fdsBefore = await openFds(pid);
    const rssBefore = await hub.rss();
    await fc.assert(
      fc.asyncProperty(requestArbitrary(hub.port), async (raw) => {
        const answer = await rawRequest(hub.port, raw, 300);
        // 0: the server closed without answering or the answer did not come within the read time
        // (an upgraded socket, or hyper waiting for a body); both are fine, 500 never is.
        assert.ok(
          answer.status === 0 || DOCUMENTED.has(answer.status),
          `status ${answer.status} for ${JSON.stringify(raw)}: ${answer.text.slice(0, 200)}`,
        );
        assert.ok(
          !answer.text.includes(TEST_TOKEN),
          `the answer echoes the token: ${JSON.stringify(raw)}`,
        );
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    // Connections the fuzz left open are the client's; once closed, the hub lets go of them.
    let fds = await openFds(pid);
    for (let tries = 0; tries < 100 && fds > fdsBefore + 5; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      fds = await openFds(pid);
    }
    assert.ok(fds <= fdsBefore + 5, `open fds ${fdsBefore} before, ${fds} after`);
    const growth = (await hub.rss() - rssBefore) / 1048576;
    assert.ok(growth < 64, `RSS grew ${growth.toFixed(1)} MiB`);
    assert.equal((await fetch(`${hub.url}/health`)).status, 200);
  } finally {
    await hub.stop();
  }
  for (const line of hub.logs) {
    assert.ok(!line.includes(TEST_TOKEN), `a log line holds the token: ${line}`);
    assert.doesNotThrow(() => JSON.parse(line), `not a structured log line: ${line}`);
  }
});

/** The JWT secret of the auth fuzz hub: it must never appear in an answer or a log line. */
const FUZZ_JWT_SECRET = "fuzz-jwt-secret-0123456789abcdefghijkl";

/** Credentials of every shape the auth surfaces may see, with the ones signed beforehand. */
async function credentialArbitrary() {
  const { SignJWT, UnsecuredJWT, generateKeyPair } = await import("jose");
  const key = new TextEncoder().encode(FUZZ_JWT_SECRET);
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    sub: "fuzz",
    tenant: "acme",
    aud: "herald",
    scope: "subscribe:* publish:deploy.*",
  };
  const hs = (payload: Record<string, unknown>, exp: number) =>
    new SignJWT(payload).setProtectedHeader({ alg: "HS256" }).setExpirationTime(exp).sign(key);
  const rsa = await generateKeyPair("RS256");
  const signed = [
    await hs(claims, now + 3600),
    await hs(claims, now - 3600),
    await hs({ ...claims, tenant: "bad tenant" }, now + 3600),
    await hs({ ...claims, aud: "someone-else" }, now + 3600),
    await hs({ ...claims, scope: "agent" }, now + 3600),
    await hs({ ...claims, scope: 42 }, now + 3600),
    new UnsecuredJWT(claims).setExpirationTime(now + 3600).encode(),
    await new SignJWT(claims).setProtectedHeader({ alg: "RS256" }).setExpirationTime(now + 3600)
      .sign(rsa.privateKey),
    await new SignJWT(claims).setProtectedHeader({ alg: "HS512" }).setExpirationTime(now + 3600)
      .sign(new TextEncoder().encode(FUZZ_JWT_SECRET + FUZZ_JWT_SECRET)),
  ];
  const segment = fc.string({
    unit: fc.constantFrom(..."ABCDEFabcdef0123456789-_=+/.%"),
    maxLength: 60,
  });
  return {
    signed,
    credential: fc.oneof(
      { arbitrary: fc.constantFrom(signed[0]!), weight: 3 },
      { arbitrary: fc.constantFrom(...signed), weight: 3 },
      fc.tuple(segment, segment, segment).map((parts) => parts.join(".")),
      printable,
      fc.constant("x".repeat(20_000)),
      fc.constant(""),
    ),
  };
}

Deno.test("auth surface fuzz (jwt mode): every credential in every place gets a documented refusal, never the token or secret", async () => {
  const hub = await spawnHub({
    HERALD_LOG_LEVEL: "debug",
    HERALD_AUTH: "jwt",
    HERALD_JWT_SECRET: FUZZ_JWT_SECRET,
    HERALD_JWT_AUDIENCE: "herald",
    HERALD_UPGRADE_RATE: "100000",
    HERALD_UPGRADE_BURST: "100000",
  });
  const { signed, credential } = await credentialArbitrary();
  const presented = new Set<string>(signed);
  const statuses = new Map<number, number>();
  const place = fc.constantFrom("authorization", "query", "protocol", "agent", "raw-authorization");
  const path = fc.constantFrom("/ws", "/events", "/events/stream", "/state", "/history", "/apps/x");
  const upgrade = [
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
  ];
  const body = fc.constantFrom(
    '{"type":"deploy.step"}',
    '{"type":"deploy.step","tenant":"globex"}',
    '[{"type":"persona.changed"}]',
  );
  try {
    await fc.assert(
      fc.asyncProperty(path, place, credential, body, async (path, where, token, body) => {
        presented.add(token);
        const safe = token.replace(/[^\x21-\x7e]/g, "");
        const method = path === "/events" ? "POST" : "GET";
        const query = where === "query" ? `?token=${encodeURIComponent(token)}` : "";
        const lines = [`${method} ${path}${query} HTTP/1.1`, `Host: 127.0.0.1:${hub.port}`];
        if (path === "/ws") lines.push(...upgrade);
        if (where === "authorization") lines.push(`Authorization: Bearer ${safe}`);
        if (where === "raw-authorization") lines.push(`Authorization: ${safe}`);
        if (where === "protocol") lines.push(`Sec-WebSocket-Protocol: bearer.${safe}`);
        if (where === "agent") lines.push(`X-Agent-API-Key: ${safe}`);
        if (method === "POST") {
          lines.push("Content-Type: application/json", `Content-Length: ${body.length}`);
        }
        const raw = `${lines.join("\r\n")}\r\n\r\n${method === "POST" ? body : ""}`;
        const answer = await rawRequest(hub.port, raw, 300);
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        assert.ok(
          answer.status === 0 || DOCUMENTED.has(answer.status),
          `status ${answer.status} for ${path} ${where}: ${answer.text.slice(0, 200)}`,
        );
        // The accepted subprotocol is echoed by design (RFC 6455); nothing else may hold it.
        const text = answer.text.split("\r\n").filter((line) =>
          !line.toLowerCase().startsWith("sec-websocket-protocol:")
        ).join("\r\n");
        assert.ok(!text.includes(FUZZ_JWT_SECRET), "the answer holds the secret");
        if (safe.length >= 16) assert.ok(!text.includes(safe), `the answer echoes ${where}`);
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    // Both sides were exercised: valid credentials got in, the rest were refused.
    const admitted = [101, 200, 202].reduce((sum, status) => sum + (statuses.get(status) ?? 0), 0);
    assert.ok(admitted > 0 && (statuses.get(401) ?? 0) > 0, JSON.stringify([...statuses]));
    assert.equal((await fetch(`${hub.url}/health`)).status, 200);
  } finally {
    await hub.stop();
  }
  for (const line of hub.logs) {
    assert.ok(!line.includes(FUZZ_JWT_SECRET), `a log line holds the secret: ${line}`);
    for (const token of presented) {
      if (token.length >= 16) assert.ok(!line.includes(token), `a log line holds a token: ${line}`);
    }
    assert.doesNotThrow(() => JSON.parse(line), `not a structured log line: ${line}`);
  }
});
