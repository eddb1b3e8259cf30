/**
 * The dashboard as the hub serves it, without a browser: the checked-in build is what `web/`
 * builds to; `/` and `/assets/…` answer with their content types, caching and compression; the
 * hub's own origin may open `/ws` while a foreign one may not; `HERALD_DASHBOARD=0` serves none.
 * @module
 */

import assert from "node:assert/strict";
import { DASHBOARD_ROUTE, ENTRYPOINT, INCLUDES } from "../deploy/compile.ts";
import { localModules } from "./_deploy.ts";
import { buildDashboard, BUILT_MODULE, builtModule } from "../web/build.ts";
import { startTestHub } from "./_harness.ts";
import { rawRequest } from "./_raw_ws.ts";

Deno.test("the checked-in dashboard build is what web/ builds (run deno task build:web)", async () => {
  const built = builtModule(await buildDashboard());
  assert.ok(built === await Deno.readTextFile(BUILT_MODULE), "web/dist/dashboard.ts is stale");
});

Deno.test("deno compile gets the dashboard through imports; the binary test checks its route", async () => {
  assert.deepEqual(INCLUDES, []);
  assert.equal(DASHBOARD_ROUTE, "/");
  const modules = await localModules(ENTRYPOINT);
  assert.ok(modules.includes("web/dist/dashboard.ts"), "the built dashboard is in main.ts's graph");
});

Deno.test("/ is the page (revalidated), its assets are hashed, long-cached and gzipped", async () => {
  await using hub = startTestHub();
  const page = await fetch(`${hub.url}/`);
  assert.equal(page.status, 200);
  assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
  assert.equal(page.headers.get("cache-control"), "no-cache");
  assert.match(page.headers.get("content-security-policy") ?? "", /default-src 'self'/);
  const html = await page.text();
  const script = /src="(\/assets\/app\.[0-9a-f]{12}\.js)"/.exec(html)?.[1];
  const style = /href="(\/assets\/app\.[0-9a-f]{12}\.css)"/.exec(html)?.[1];
  assert.ok(script && style, html);

  const again = await fetch(`${hub.url}/`, {
    headers: { "if-none-match": page.headers.get("etag")! },
  });
  assert.equal(again.status, 304);
  await again.body?.cancel();

  const js = await fetch(`${hub.url}${script}`, { headers: { "accept-encoding": "gzip" } });
  assert.equal(js.status, 200);
  assert.equal(js.headers.get("content-type"), "text/javascript; charset=utf-8");
  assert.equal(js.headers.get("cache-control"), "public, max-age=31536000, immutable");
  assert.equal(js.headers.get("content-encoding"), "gzip");
  const bytes = (await js.arrayBuffer()).byteLength; // fetch decompressed it
  assert.ok(bytes > 1000, `${bytes} bytes of script`);
  assert.ok(Number(js.headers.get("content-length")) < bytes, "compressed is smaller");

  const css = await fetch(`${hub.url}${style}`);
  assert.equal(css.headers.get("content-type"), "text/css; charset=utf-8");
  await css.body?.cancel();

  const missing = await fetch(`${hub.url}/assets/app.000000000000.js`);
  assert.equal(missing.status, 404);
  assert.equal((await missing.json()).error.code, "not_found");
  const post = await fetch(`${hub.url}/`, { method: "POST" });
  assert.equal(post.status, 405);
  await post.body?.cancel();
});

Deno.test("HERALD_DASHBOARD=0 serves no dashboard", async () => {
  await using hub = startTestHub({ HERALD_DASHBOARD: "0" });
  const page = await fetch(`${hub.url}/`);
  assert.equal(page.status, 404);
  assert.equal((await page.json()).error.code, "not_found");
});

/** A WebSocket upgrade with `Host` and `Origin` as given; answers the status line's code. */
async function upgrade(port: number, host: string, origin: string): Promise<number> {
  const answer = await rawRequest(
    port,
    [
      "GET /ws HTTP/1.1",
      `Host: ${host}`,
      "Upgrade: websocket",
      "Connection: Upgrade",
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
      "Sec-WebSocket-Version: 13",
      `Origin: ${origin}`,
      "",
      "",
    ].join("\r\n"),
    1000,
  );
  return answer.status;
}

Deno.test("the hub's own origin may open /ws without HERALD_ALLOWED_ORIGINS; others may not", async () => {
  await using hub = startTestHub({ HERALD_ALLOWED_HOSTS: "hub.example" });
  const host = `hub.example:${hub.port}`;
  assert.equal(await upgrade(hub.port, host, `http://${host}`), 101);
  assert.equal(await upgrade(hub.port, host, `https://${host}`), 101, "behind a TLS proxy");
  assert.equal(await upgrade(hub.port, host, "http://evil.example"), 403);
  assert.equal(await upgrade(hub.port, host, `http://hub.example:${hub.port + 1}`), 403);
});
