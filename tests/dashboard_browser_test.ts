/**
 * The dashboard end to end in real headless Chromium (Debian's, driven by playwright-core),
 * served by real hubs: events published through the API show in the right places; a
 * deployment's steps appear live and its replay from history shows the same timeline; a hub
 * restart shows the "Reconnecting…" banner, then removes it, with every event row once; a hub in
 * token mode (`HERALD_AUTH=token`) asks for a token, refuses a wrong one, keeps the right one out
 * of the URL and shows only its tenant's events. Every assertion on the page is on the state the
 * test waited for (`waitFor`, `waitForEqual`), not on a neighbour that may render a frame later.
 * Screenshots (desktop and narrow) go to `test-output/dashboard/` (or
 * `$HERALD_TEST_OUTPUT/dashboard/`) for humans. Ignored, with the reason printed, when Chromium
 * is not installed.
 * @module
 */

import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import type { Page } from "playwright-core";
import { chromiumMissing, launchChromium } from "./_chromium.ts";
import { OUTPUT } from "./_dashboard.ts";
import { openTestHub, publishSeqs, publishTo, spawnHub, waitFor } from "./_harness.ts";
import { publishAs, startAuthHub, type TokenEntry, tokensFile } from "./_identity.ts";

const missing = chromiumMissing();
if (missing !== null) console.log(`dashboard_browser_test ignored: ${missing}`);

const browserTest = (name: string, fn: () => Promise<void>) =>
  Deno.test({
    name: `dashboard (Chromium): ${name}`,
    ignore: missing !== null,
    sanitizeResources: false,
    sanitizeOps: false,
    fn,
  });

/** Opens the dashboard at `url` (with a route) in a fresh page that logs its errors. */
async function open(browser: Awaited<ReturnType<typeof launchChromium>>, url: string) {
  const page = await browser.newPage();
  page.on("pageerror", (error) => console.log(`page error: ${error.message}`));
  await page.goto(url);
  return page;
}

async function connected(page: Page, what = "the dashboard to connect"): Promise<void> {
  await waitFor(
    async () => (await page.textContent("[data-testid=connection]"))?.includes("Connected"),
    what,
    15_000,
  );
}

/**
 * Waits until `read()` deep-equals `expected`, then asserts it: a test asserts on the state it
 * waited for, never on a neighbour that may render a frame later. On timeout the assertion shows
 * the last value read.
 */
async function waitForEqual<T>(
  read: () => Promise<T>,
  expected: T,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  let last: T | undefined;
  try {
    await waitFor(async () => isDeepStrictEqual(last = await read(), expected), what, timeoutMs);
  } catch (error) {
    assert.deepEqual(last, expected, (error as Error).message);
  }
  assert.deepEqual(last, expected, what);
}

/** The text of every element matching `selector`. */
function texts(page: Page, selector: string): Promise<string[]> {
  return page.$$eval(selector, (nodes) => nodes.map((node) => node.textContent ?? ""));
}

/** A step as a test reads it: name, status, shown duration, error text. */
type StepRow = [string, string, string, string];

function steps(page: Page, run: string): Promise<StepRow[]> {
  return page.$$eval(`${run} li.step`, (nodes) =>
    nodes.map((node) =>
      [
        node.getAttribute("data-step") ?? "",
        node.getAttribute("data-status") ?? "",
        node.querySelector("[data-testid=step-duration]")?.textContent ?? "",
        node.querySelector(".error")?.textContent ?? "",
      ] as StepRow
    ));
}

async function screenshot(page: Page, name: string): Promise<void> {
  await Deno.mkdir(OUTPUT, { recursive: true });
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.screenshot({ path: `${OUTPUT}/${name}-desktop.png`, fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: `${OUTPUT}/${name}-narrow.png`, fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });
}

const at = (ms: number) => new Date(Date.UTC(2026, 10, 24, 9, 0, 0) + ms).toISOString();

browserTest("apps and events from the API, filters, pause with a held count", async () => {
  await using hub = await openTestHub();
  await using browser = await launchChromium();
  await publishSeqs(hub, [
    { type: "app.status", appId: "billing", payload: { status: "RUNNING", health: "HEALTHY" } },
    { type: "app.status", appId: "search", payload: { status: "DEGRADED" } },
  ]);
  const page = await open(browser, `${hub.url}/#apps`);
  await connected(page);
  // From the snapshot: both apps, status as words.
  await waitFor(
    async () => (await texts(page, "[data-testid=apps] tbody tr")).length === 2,
    "2 apps",
  );
  // Live: a third app, and a health change of the first.
  await publishSeqs(hub, [
    { type: "health.check", appId: "billing", payload: { healthy: false } },
    { type: "app.status", appId: "mail", namespace: "prod", payload: { status: "RUNNING" } },
  ]);
  await waitFor(
    async () => (await texts(page, "[data-app=billing] td")).join(" ").includes("UNHEALTHY"),
    "billing's health to change live",
  );
  const appNames = () => texts(page, "[data-testid=apps] tbody th");
  await waitForEqual(appNames, ["billing", "mail", "search"], "the live third app, sorted");
  await page.fill("[data-testid=app-search]", "ma");
  await waitForEqual(appNames, ["mail"], "the search to filter the apps");
  // A click opens the app.
  await page.click("[data-app=mail] a");
  await page.waitForSelector("[data-testid=app-detail] h2:text('mail')", { timeout: 5000 });

  // The keyboard reaches every view; focus is visible.
  await page.focus("nav a[href='#pipelines']");
  await page.keyboard.press("Shift+Tab");
  await page.keyboard.press("Tab");
  const outline = await page.$eval(
    ":focus",
    (node) =>
      (globalThis as unknown as { getComputedStyle(n: unknown): { outlineStyle: string } })
        .getComputedStyle(node).outlineStyle,
  );
  assert.notEqual(outline, "none", "the focused link shows an outline");
  await page.keyboard.press("Enter");
  await page.waitForSelector("#pipelines-title", { timeout: 5000 });

  // Events: filter by type pattern and namespace; pause holds new rows and counts them.
  await page.goto(`${hub.url}/#events`);
  await page.reload(); // a fresh page: its event list starts empty
  await connected(page);
  await publishSeqs(hub, [
    { type: "deploy.queued", appId: "mail", namespace: "prod", payload: {} },
    { type: "log.line", appId: "mail", namespace: "prod", payload: { line: "hello" } },
    { type: "deploy.queued", appId: "search", namespace: "dev", payload: {} },
  ]);
  const rowTypes = () => texts(page, "[data-testid=events] tbody tr td:nth-child(2)");
  await waitFor(async () => (await rowTypes()).length === 3, "3 event rows");
  await page.fill("[data-testid=filter-type]", "deploy.*");
  await page.fill("[data-testid=filter-namespace]", "prod");
  await waitForEqual(rowTypes, ["deploy.queued"], "the filters to apply");
  await page.fill("[data-testid=filter-type]", "");
  await page.fill("[data-testid=filter-namespace]", "");
  await page.click("[data-testid=pause]");
  await publishSeqs(
    hub,
    [1, 2].map((n) => ({ type: "log.line", appId: "mail", payload: { line: `${n}` } })),
  );
  await waitFor(
    async () => (await page.textContent("[data-testid=event-counts]"))?.includes("2 held"),
    "2 held while paused",
  );
  assert.equal((await rowTypes()).length, 3, "paused: no new rows");
  await page.click("[data-testid=pause]");
  await waitFor(async () => (await rowTypes()).length === 5, "the held rows after resume");
  await page.close();
});

browserTest(
  "a deployment's steps appear live; its replay from history is the same timeline",
  async () => {
    await using hub = await openTestHub();
    await using browser = await launchChromium();
    const page = await open(browser, `${hub.url}/#pipelines`);
    await connected(page);
    const live = "[data-testid=live-runs] [data-run='deploy:shop']";
    const step = (ms: number, payload: Record<string, unknown>) => ({
      type: "deploy.step",
      appId: "shop",
      timestamp: at(ms),
      payload,
    });
    await publishSeqs(hub, [
      { type: "deploy.queued", appId: "shop", timestamp: at(0), payload: { imageTag: "v3" } },
      step(100, { step: "pull", status: "running", output: "pulling registry.local/shop:v3" }),
    ]);
    await waitFor(
      async () =>
        (await texts(page, `${live} li[data-step=pull][data-status=running] .output`))
          .join("").includes("pulling"),
      "the running pull step with its output",
      10_000,
    );
    await publishSeqs(hub, [
      step(1300, { step: "pull", status: "done", durationMs: 1200 }),
      step(1400, { step: "build", status: "running" }),
    ]);
    await page.waitForSelector(`${live} li[data-step=build][data-status=running]`, {
      timeout: 10_000,
    });
    await waitForEqual(
      async () => (await steps(page, live))[0],
      ["pull", "done", "1.2s", ""] as StepRow,
      "pull done in 1.2s",
    );
    await publishSeqs(hub, [
      step(4500, { step: "build", status: "done", durationMs: 3100 }),
      step(4600, { step: "test", status: "running", output: "running 48 tests" }),
      {
        type: "deploy.failed",
        appId: "shop",
        timestamp: at(8000),
        payload: { step: "test", error: "3 of 48 tests failed" },
      },
    ]);
    const recent = "[data-testid=recent-runs] [data-run='deploy:shop']";
    const timeline: StepRow[] = [
      ["pull", "done", "1.2s", ""],
      ["build", "done", "3.1s", ""],
      ["test", "failed", "3.4s", "Error: 3 of 48 tests failed"],
    ];
    await waitForEqual(() => steps(page, recent), timeline, "the failed run among recent runs");
    await waitFor(async () => await page.$(live) === null, "the run no longer in progress");
    await screenshot(page, "pipelines");

    // The app's page: its past deployment, replayed from the hub's history.
    await page.goto(`${hub.url}/#apps/shop`);
    await page.click("[data-testid=load-history]");
    await page.click("[data-testid=past-deploys] button", { timeout: 10_000 });
    await waitForEqual(() => steps(page, "[data-testid=replay]"), timeline, "the replay");
    await screenshot(page, "replay");
    await page.close();
  },
);

browserTest("a hub restart: banner, then gone; every event row once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "herald-dashboard-" });
  try {
    const env = { HERALD_HISTORY: "kv", HERALD_KV_PATH: `${dir}/history.sqlite` };
    const first = await spawnHub(env);
    const port = first.port;
    await using browser = await launchChromium();
    const page = await open(browser, `${first.url}/#events`);
    await connected(page);
    const line = (n: number) => ({ type: "log.line", appId: "restart", payload: { line: `${n}` } });
    const publish = (url: string, events: unknown[]) => publishSeqs(via(url), events);
    const rows = () =>
      page.$$eval(
        "[data-testid=events] tbody tr",
        (trs) => trs.map((tr) => tr.getAttribute("data-seq") ?? ""),
      );
    const before = await publish(first.url, [0, 1, 2, 3, 4].map(line));
    await waitFor(async () => (await rows()).length === 5, "5 rows before the restart");

    assert.equal((await first.stop()).code, 0);
    await waitFor(
      async () => /Reconnecting…/.test((await texts(page, "[data-testid=banner]")).join("")),
      "the Reconnecting… banner",
      15_000,
    );
    await screenshot(page, "reconnecting");

    await using second = await spawnHub({ ...env, PORT: String(port) });
    const during = await publish(second.url, [5, 6, 7, 8, 9].map(line));
    await page.waitForSelector("[data-testid=banner]", { state: "detached", timeout: 30_000 });
    await connected(page, "the dashboard to reconnect");
    const after = await publish(second.url, [10].map(line));
    const expected = [...before, ...during, ...after];
    await waitFor(async () => (await rows()).length >= expected.length, "every row", 15_000);
    const shown = await rows();
    assert.equal(new Set(shown).size, shown.length, `no row twice: ${shown}`);
    assert.deepEqual([...shown].sort(), [...expected].sort(), "every event, none missing");
    await page.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

browserTest(
  "a restart that loses history: a fresh snapshot, the apps rows are the hub's, once each",
  async () => {
    const first = await spawnHub(); // memory history: the restarted hub cannot resume anyone
    const port = first.port;
    await using browser = await launchChromium();
    const page = await open(browser, `${first.url}/#apps`);
    await connected(page);
    const status = (appId: string) => ({
      type: "app.status",
      appId,
      payload: { status: "RUNNING" },
    });
    const apps = () => texts(page, "[data-testid=apps] tbody th");
    await publishSeqs(via(first.url), ["a1", "a2"].map(status));
    await waitFor(async () => (await apps()).length === 2, "2 apps before the restart");

    assert.equal((await first.stop()).code, 0);
    await page.waitForSelector("[data-testid=banner]", { timeout: 15_000 });
    await using second = await spawnHub({ PORT: String(port) });
    await publishSeqs(via(second.url), ["a3", "a4"].map(status));
    await page.waitForSelector("[data-testid=banner]", { state: "detached", timeout: 30_000 });
    await publishSeqs(via(second.url), ["a5"].map(status));
    // The new hub knows a3-a5 only; the page shows exactly what it knows, each once.
    await waitFor(
      async () => (await apps()).join(",") === "a3,a4,a5",
      "the apps of the restarted hub",
      15_000,
    );
    const hubApps = (await (await fetch(`${second.url}/apps`)).json()).apps
      .map((app: { appId: string }) => app.appId).sort();
    assert.deepEqual(await apps(), hubApps);
    await page.close();
  },
);

/** The spawned hub's publish, shaped like a test hub's for `publishSeqs`. */
function via(url: string) {
  return { publish: (body: unknown) => publishTo(url, body) };
}

const ACME_DASHBOARD = "acme-dashboard-token-0001";
/** Publishes for any tenant (`tenants:*`): the test's control plane. */
const PLANE = "control-plane-token-00004";
const TOKENS: TokenEntry[] = [
  { token: ACME_DASHBOARD, tenant: "acme", name: "acme-dashboard", scopes: ["subscribe:*"] },
  { token: PLANE, tenant: "ops", name: "plane", scopes: ["publish:*", "tenants:*"] },
];

browserTest(
  "a hub in token mode asks for a token, refuses a wrong one, shows only the token's tenant",
  async () => {
    await using file = await tokensFile(TOKENS);
    await using hub = await startAuthHub({ HERALD_AUTH: "token", HERALD_TOKENS_FILE: file.path });
    await using browser = await launchChromium();
    const page = await open(browser, `${hub.url}/#apps`);
    await page.waitForSelector("[data-testid=signin]", { timeout: 10_000 });
    await screenshot(page, "signin");
    await page.fill("[data-testid=token]", "wrong-token-0000000000");
    await page.click("[data-testid=signin] button");
    await page.waitForSelector("[data-testid=refused]", { timeout: 10_000 });
    assert.equal(await page.evaluate(() => sessionStorage.getItem("herald.token")), null);

    await page.fill("[data-testid=token]", ACME_DASHBOARD);
    await page.click("[data-testid=signin] button");
    await connected(page, "the dashboard to connect with the token");
    assert.equal(await page.$("[data-testid=signin]"), null);
    assert.equal(await page.evaluate(() => sessionStorage.getItem("herald.token")), ACME_DASHBOARD);
    assert.ok(!page.url().includes(ACME_DASHBOARD) && !page.url().includes("token"), page.url());

    // Another tenant's app first, then acme's: when acme's row is there, globex's would be too.
    const status = (tenant: string, appId: string) => ({
      type: "app.status",
      tenant,
      appId,
      payload: { status: "RUNNING" },
    });
    assert.equal((await publishAs(hub, PLANE, [status("globex", "foreign")])).status, 202);
    assert.equal((await publishAs(hub, PLANE, [status("acme", "guarded")])).status, 202);
    await page.waitForSelector("[data-app=guarded]", { timeout: 10_000 });
    assert.deepEqual(await texts(page, "[data-testid=apps] tbody th"), ["guarded"]);
    // Every event the page received, and every app it knows: acme's only.
    const received = await page.evaluate(() => {
      const { model } = (globalThis as unknown as {
        herald: { model: { events: { appId?: string }[]; apps: Map<string, unknown> } };
      }).herald;
      return { events: model.events.map((event) => event.appId), apps: [...model.apps.keys()] };
    });
    assert.deepEqual(received, { events: ["guarded"], apps: ["guarded"] });
    const acmeApps = await (await fetch(`${hub.url}/apps`, {
      headers: { authorization: `Bearer ${ACME_DASHBOARD}` },
    })).json();
    assert.deepEqual(acmeApps.apps.map((app: { appId: string }) => app.appId), ["guarded"]);
    await screenshot(page, "apps-token");

    // A login flow may hand the token over in the fragment: it is kept and leaves the URL.
    const second = await open(browser, `${hub.url}/#token=${ACME_DASHBOARD}`);
    await connected(second, "a fragment token to sign in");
    assert.ok(!second.url().includes("token"), second.url());
    await second.waitForSelector("[data-app=guarded]", { timeout: 10_000 });
    await second.close();
    await page.close();
  },
);
