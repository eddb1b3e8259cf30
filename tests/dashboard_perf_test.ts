/**
 * The dashboard under load in real Chromium: 500 apps, then 100 events per second for a few
 * seconds on each busy view (apps, pipelines, events). The page must keep up (every event folded,
 * no unbounded DOM); long tasks (PerformanceObserver `longtask`) and frame times
 * (`requestAnimationFrame` deltas) are measured and printed, and written to
 * `test-output/dashboard/performance.json`; docs/performance.md records a run. Timings are not
 * asserted: the machine is shared. Loopback only, bounded in count and time.
 * Ignored, with the reason printed, when Chromium is not installed.
 * @module
 */

import assert from "node:assert/strict";
import { chromiumMissing, launchChromium } from "./_chromium.ts";
import { publishSeqs, publishTo, spawnHub, waitFor } from "./_harness.ts";
import { OUTPUT } from "./_dashboard.ts";

const missing = chromiumMissing();
if (missing !== null) console.log(`dashboard_perf_test ignored: ${missing}`);

const APPS = 500;
const RATE = 100;
/** Seconds of load per view. */
const SECONDS = 6;
const VIEWS = ["apps", "pipelines", "events"] as const;

/** Installed before the page's own scripts: records long tasks and frame gaps. */
const PROBE = `
window.__perf = { longTasks: [], frames: [] };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) window.__perf.longTasks.push(entry.duration);
}).observe({ type: "longtask", buffered: true });
let last = performance.now();
const tick = (now) => { window.__perf.frames.push(now - last); last = now; requestAnimationFrame(tick); };
requestAnimationFrame(tick);
`;

interface Sample {
  longTasks: number[];
  frames: number[];
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const round = (n: number) => Math.round(n * 10) / 10;

Deno.test({
  name: "dashboard (Chromium): 500 apps and 100 events/s keep up with a bounded DOM",
  ignore: missing !== null,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await using hub = await spawnHub();
  const via = { publish: (body: unknown) => publishTo(hub.url, body) };
  const appIds = Array.from({ length: APPS }, (_, i) => `app-${String(i).padStart(3, "0")}`);
  await publishSeqs(
    via,
    appIds.map((appId) => ({ type: "app.status", appId, payload: { status: "RUNNING" } })),
  );
  await using browser = await launchChromium();
  const page = await browser.newPage();
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.addInitScript(PROBE);
  await page.goto(`${hub.url}/#apps`);
  /** Events the page has folded since it opened. */
  const received = () =>
    page.evaluate(() =>
      (globalThis as unknown as { herald: { model: { received: number } } }).herald.model.received
    );
  await waitFor(
    () =>
      page.evaluate(() =>
        (globalThis as unknown as { herald?: { model: { apps: Map<string, unknown> } } }).herald
          ?.model.apps.size === 500
      ),
    "the 500 apps from the snapshot",
    15_000,
  );

  const results: Record<string, unknown> = {};
  let n = 0;
  for (const view of VIEWS) {
    await page.evaluate((view) => {
      location.hash = `#${view}`;
    }, view);
    await page.evaluate(() => {
      const perf = (globalThis as unknown as { __perf: Sample }).__perf;
      perf.longTasks.length = 0;
      perf.frames.length = 0;
    });
    const start = await received();
    let published = 0;
    const until = Date.now() + SECONDS * 1000;
    // 10 events every 100 ms: deploy steps with output, logs and health across all apps.
    while (Date.now() < until) {
      const tickAt = Date.now();
      const batch = Array.from({ length: RATE / 10 }, () => {
        const appId = appIds[n++ % APPS]!;
        switch (n % 3) {
          case 0:
            return {
              type: "deploy.step",
              appId,
              payload: { step: `step-${n % 5}`, status: "running", output: `line ${n}` },
            };
          case 1:
            return { type: "log.line", appId, payload: { line: `request ${n} 200` } };
          default:
            return { type: "health.check", appId, payload: { healthy: n % 7 !== 0 } };
        }
      });
      await publishSeqs(via, batch);
      published += batch.length;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, 100 - (Date.now() - tickAt))));
    }
    await waitFor(
      async () => (await received()) - start >= published,
      `${view}: every event`,
      15_000,
    );
    const sample = await page.evaluate(() => {
      const perf = (globalThis as unknown as { __perf: Sample }).__perf;
      return {
        longTasks: [...perf.longTasks],
        frames: [...perf.frames],
        nodes: (globalThis as unknown as {
          document: { getElementsByTagName(name: string): { length: number } };
        }).document.getElementsByTagName("*").length,
        heap: (performance as unknown as { memory?: { usedJSHeapSize: number } }).memory
          ?.usedJSHeapSize ?? 0,
      };
    });
    assert.ok(sample.nodes < 10_000, `${view}: ${sample.nodes} DOM nodes (bounded)`);
    results[view] = {
      events: published,
      seconds: SECONDS,
      frames: sample.frames.length,
      frameMsP50: round(percentile(sample.frames, 50)),
      frameMsP95: round(percentile(sample.frames, 95)),
      frameMsMax: round(Math.max(0, ...sample.frames)),
      longTasks: sample.longTasks.length,
      longTaskMsTotal: Math.round(sample.longTasks.reduce((a, b) => a + b, 0)),
      longTaskMsMax: Math.round(Math.max(0, ...sample.longTasks)),
      domNodes: sample.nodes,
      heapMB: round(sample.heap / 1e6),
    };
  }
  console.log(JSON.stringify(results, null, 2));
  await Deno.mkdir(OUTPUT, { recursive: true });
  await Deno.writeTextFile(`${OUTPUT}/performance.json`, JSON.stringify(results, null, 2) + "\n");
  await page.close();
});
