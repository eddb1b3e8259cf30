/**
 * The client in real Chromium: `client/` bundled for the browser (`deno bundle --platform
 * browser`, nothing Deno-specific in it), loaded in a page on its own loopback origin, and put
 * through the same scenarios as in Deno (`_client_scenarios.ts`) against real hub processes.
 * Ignored, with the reason printed, when Chromium is not installed.
 * @module
 */

import type { Page } from "playwright-core";
import { CLIENT_SCENARIOS, type ClientDriver } from "./_client_scenarios.ts";
import type { RecorderView } from "./_client_recorder.ts";
import { bundleForBrowser, chromiumMissing, launchChromium, servePage } from "./_chromium.ts";

const missing = chromiumMissing();
if (missing !== null) console.log(`browser_client_test ignored: ${missing}`);

type PageGlobals = {
  // deno-lint-ignore no-explicit-any
  recorder: any;
  // deno-lint-ignore no-explicit-any
  Recorder: any;
};

/** The driver for a client in `page`: every call is a `page.evaluate`. */
function pageDriver(page: Page): ClientDriver {
  // deno-lint-ignore no-explicit-any
  const call = (method: string, ...args: unknown[]): Promise<any> =>
    page.evaluate(
      ([method, args]) => {
        const recorder = (globalThis as unknown as PageGlobals).recorder;
        return recorder[method as string](...(args as unknown[]));
      },
      [method, args] as const,
    );
  return {
    start: (url, options) =>
      page.evaluate(([url, options]) => {
        const globals = globalThis as unknown as PageGlobals;
        globals.recorder = new globals.Recorder(url, options);
      }, [url, options] as const),
    subscribe: async (name, topic, options = {}) => {
      await call("subscribe", name, topic, options);
      await call("ready", name);
    },
    unsubscribe: (name) => call("unsubscribe", name),
    publish: (events) => call("publish", events),
    view: () => call("view") as Promise<RecorderView>,
    wake: () => call("wake"),
    close: () => call("close"),
  };
}

const script = missing === null
  ? await bundleForBrowser(new URL("./_client_page.ts", import.meta.url))
  : "";
const html = `<!doctype html><meta charset="utf-8"><title>herald client</title><script>${
  script.replaceAll("</script", "<\\/script")
}</script>`;

for (const scenario of CLIENT_SCENARIOS) {
  Deno.test({
    name: `client (Chromium): ${scenario.name}`,
    ignore: missing !== null,
    sanitizeResources: false,
    sanitizeOps: false,
  }, async () => {
    await using page$ = servePage(html);
    await using browser = await launchChromium();
    const page = await browser.newPage();
    page.on("console", (message) => console.log(`page: ${message.text()}`));
    page.on("crash", () => console.log("page: crashed"));
    await page.goto(page$.url);
    const driver = pageDriver(page);
    let failed = false;
    try {
      await scenario.run(driver);
    } catch (error) {
      failed = true;
      throw error;
    } finally {
      // After a failure the page may be gone: cleaning up must not replace the scenario's error.
      if (!failed) await driver.close();
      await page.close();
    }
  });
}
