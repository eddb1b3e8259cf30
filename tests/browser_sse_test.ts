/**
 * The SSE stream in a real browser: Debian's Chromium, driven by playwright-core, opens an
 * `EventSource` from a page on another loopback origin to a hub process. Events arrive under
 * their type with `lastEventId` = seq; when the hub restarts (KV history in a temp file, so
 * cursors survive) the browser reconnects by itself, sends `Last-Event-ID`, and gets the events
 * it missed exactly once. Ignored, with the reason printed, when Chromium is not installed.
 * @module
 */
import assert from "node:assert/strict";
import { type BrowserContext, chromium, type Page, type Route } from "playwright-core";
import { type HubProcess, publishSeqs, publishTo, spawnHub, waitFor } from "./_harness.ts";

const CHROMIUM = "/usr/bin/chromium";

/** Why the browser test cannot run here, or null when Chromium is installed. */
function chromiumMissing(): string | null {
  try {
    Deno.statSync(CHROMIUM);
    return null;
  } catch {
    return `${CHROMIUM} is not installed (apt-get install chromium; .ci/run does this)`;
  }
}

const missing = chromiumMissing();
if (missing !== null) console.log(`browser_sse_test ignored: ${missing}`);

/** The page: an EventSource whose events, opens and errors are recorded for the test to read. */
const PAGE = `<!doctype html><meta charset="utf-8"><title>herald sse</title><script>
window.received = [];
window.opens = 0;
window.errors = 0;
window.listen = (url, names) => {
  const source = new EventSource(url);
  source.onopen = () => window.opens++;
  source.onerror = () => window.errors++;
  source.onmessage = (e) => window.received.push({ event: "message", lastEventId: e.lastEventId });
  for (const name of names) {
    source.addEventListener(name, (e) => {
      window.received.push({ event: e.type, lastEventId: e.lastEventId, data: JSON.parse(e.data) });
    });
  }
};
</script>`;

interface Received {
  event: string;
  lastEventId: string;
  // deno-lint-ignore no-explicit-any
  data: any;
}

/** Serves the page on a loopback origin of its own (allowed by the hub: it is 127.0.0.1). */
function servePage(): { url: string; [Symbol.asyncDispose](): Promise<void> } {
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: () => {} },
    () => new Response(PAGE, { headers: { "content-type": "text/html; charset=utf-8" } }),
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}/`,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/** Chromium with a fresh profile in a temp directory (Playwright passes it as --user-data-dir). */
async function launch(): Promise<BrowserContext & { [Symbol.asyncDispose](): Promise<void> }> {
  const profile = await Deno.makeTempDir({ prefix: "herald-chromium-" });
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return Object.assign(browser, {
    [Symbol.asyncDispose]: async () => {
      await browser.close();
      await Deno.remove(profile, { recursive: true });
    },
  });
}

const received = (page: Page) =>
  page.evaluate(() => (globalThis as unknown as { received: Received[] }).received);
const opens = (page: Page) =>
  page.evaluate(() => (globalThis as unknown as { opens: number }).opens);

/** The page's received events with an id, once there are at least `count`. */
function waitForEvents(page: Page, count: number): Promise<Received[]> {
  return waitFor(
    async () => {
      const events = (await received(page)).filter((message) =>
        message.event.startsWith("deploy.")
      );
      return events.length >= count ? events : null;
    },
    `${count} events in the browser`,
    10_000,
  );
}

function via(hub: HubProcess) {
  return { publish: (body: unknown) => publishTo(hub.url, body) };
}

const step = (n: number) => ({
  type: n % 2 === 0 ? "deploy.step" : "deploy.queued",
  appId: "web",
  payload: { step: `s${n}`, status: "running", n },
});

Deno.test({
  name: "browser EventSource gets named events with lastEventId and resumes after a hub restart",
  ignore: missing !== null,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "herald-browser-kv-" });
  await using _cleanup = { [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }) };
  const env = { HERALD_HISTORY: "kv", HERALD_KV_PATH: `${dir}/history.sqlite` };
  await using page$ = servePage();
  await using browser = await launch();
  await using first = await spawnHub(env);
  const port = first.port;
  const streamUrl = `${first.url}/events/stream?topic=deploy.*&appId=web`;

  // Every request the EventSource makes is recorded; from the second on (the browser's own
  // reconnect) it is held until the test has published what the browser is to miss.
  let requests = 0;
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const page = await browser.newPage();
  await page.route(`${first.url}/events/stream**`, async (route: Route) => {
    if (++requests > 1) await released;
    await route.continue();
  });
  page.on("console", (message) => console.log(`page: ${message.text()}`));
  await page.goto(page$.url);
  await page.evaluate(
    ([url, names]) =>
      (globalThis as unknown as { listen(u: string, n: string[]): void }).listen(url, names),
    [streamUrl, ["deploy.step", "deploy.queued", "response", "close"]] as [string, string[]],
  );
  await waitFor(async () => (await opens(page)) === 1, "the EventSource to open", 10_000);

  const live = await publishSeqs(via(first), [0, 1, 2].map(step));
  const events = await waitForEvents(page, 3);
  assert.deepEqual(events.map((e) => e.event), ["deploy.step", "deploy.queued", "deploy.step"]);
  assert.deepEqual(events.map((e) => e.lastEventId), live);
  assert.deepEqual(events.map((e) => e.data.seq), live, "data is the event frame");
  assert.deepEqual(events.map((e) => e.data.payload.n), [0, 1, 2]);

  // The hub process stops: the stream ends (after a `close` event) and the browser retries.
  assert.equal((await first.stop()).code, 0);
  await waitFor(() => requests === 2, "the browser to reconnect by itself", 15_000);

  // A new process on the same port and the same history; the browser misses these three.
  await using second = await spawnHub({ ...env, PORT: String(port) });
  const missed = await publishSeqs(via(second), [3, 4, 5].map(step));
  release();
  await waitForEvents(page, 6);
  await waitFor(async () => (await opens(page)) === 2, "the EventSource to open again");
  const after = await publishSeqs(via(second), [step(6)]);
  const all = await waitForEvents(page, 7);
  assert.deepEqual(
    all.map((e) => e.lastEventId),
    [...live, ...missed, ...after],
    "every event exactly once, in order",
  );
  const notices = (await received(page)).filter((message) => !message.event.startsWith("deploy."));
  assert.ok(
    notices.some((n) => n.event === "close"),
    `the stopping hub said why it ended the stream: ${JSON.stringify(notices)}`,
  );
  // The stream URL has no `since`: the hub resumed from the Last-Event-ID header the browser
  // sent by itself (Chromium adds it below the layer Playwright's interception shows).
  const resumed = notices.find((n) => n.event === "response");
  assert.deepEqual(resumed?.data.payload, {
    status: "subscribed",
    topic: "deploy.*",
    recovered: true,
    replayed: 3,
  });
  assert.equal(requests, 2, "one reconnect");
  await page.close();
});
