/**
 * Debian's Chromium for the client's browser tests, driven by playwright-core, and a loopback
 * server for a test page.
 * @module
 */

import { type BrowserContext, chromium } from "playwright-core";

const CHROMIUM = "/usr/bin/chromium";

/** Why browser tests cannot run here, or null when Chromium is installed. */
export function chromiumMissing(): string | null {
  try {
    Deno.statSync(CHROMIUM);
    return null;
  } catch {
    return `${CHROMIUM} is not installed (apt-get install chromium; .ci/run does this)`;
  }
}

/** Headless Chromium with a fresh profile in a temp directory, removed on dispose. */
export async function launchChromium(): Promise<BrowserContext & AsyncDisposable> {
  const profile = await Deno.makeTempDir({ prefix: "herald-chromium-" });
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
  return Object.assign(browser, {
    [Symbol.asyncDispose]: async () => {
      await browser.close();
      await Deno.remove(profile, { recursive: true });
    },
  });
}

/** Serves `html` on a loopback origin of its own. */
export function servePage(html: string): { url: string } & AsyncDisposable {
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: () => {} },
    () => new Response(html, { headers: { "content-type": "text/html; charset=utf-8" } }),
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}/`,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

export { bundleForBrowser } from "../web/build.ts";
