/**
 * Serves the built dashboard (`web/dist/dashboard.ts`, see `web/build.ts`): the page at `/`,
 * revalidated on every load (`no-cache` with an `ETag`), and its content-hashed assets under
 * `/assets/`, cached for a year as immutable. Text files are gzip-compressed once at start for
 * clients that accept it. The build is an imported module, so `deno compile` embeds it and the
 * hub never reads it from disk, whatever its working directory.
 * @module
 */

import { gzipSync } from "node:zlib";
import { DASHBOARD_FILES } from "../web/dist/dashboard.ts";

/** The path prefix of the dashboard's assets. */
export const ASSETS_PREFIX = "/assets/";

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  ico: "image/x-icon",
  json: "application/json; charset=utf-8",
};

/** Files smaller than this are sent as they are: gzip would not pay for its header. */
const COMPRESS_FROM_BYTES = 1024;

const PAGE_CACHE = "no-cache";
const ASSET_CACHE = "public, max-age=31536000, immutable";

/** Headers every dashboard answer carries. `style-src 'unsafe-inline'`: the step bars' widths. */
const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

interface Asset {
  readonly body: Uint8Array;
  readonly gzip: Uint8Array | null;
  readonly type: string;
  readonly etag: string;
  readonly cacheControl: string;
}

/**
 * The dashboard's files in memory, answering `GET`/`HEAD` for `/` and `/assets/…`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Dashboard } from "./dashboard.ts";
 * const dashboard = new Dashboard(new Map([
 *   ["index.html", new TextEncoder().encode("<!doctype html><title>Herald</title>")],
 *   ["assets/app.1a2b.js", new TextEncoder().encode("console.log(1)".repeat(200))],
 * ]));
 * const page = dashboard.answer(new Request("http://hub/"))!;
 * assert.equal(page.headers.get("cache-control"), "no-cache");
 * assert.match(page.headers.get("content-type")!, /text\/html/);
 * const again = dashboard.answer(
 *   new Request("http://hub/", { headers: { "if-none-match": page.headers.get("etag")! } }),
 * )!;
 * assert.equal(again.status, 304);
 * const script = dashboard.answer(
 *   new Request("http://hub/assets/app.1a2b.js", { headers: { "accept-encoding": "gzip, br" } }),
 * )!;
 * assert.equal(script.headers.get("content-encoding"), "gzip");
 * assert.match(script.headers.get("cache-control")!, /immutable/);
 * assert.equal(dashboard.answer(new Request("http://hub/assets/nope.js")), null);
 * ```
 */
export class Dashboard {
  readonly #assets = new Map<string, Asset>();

  /** `files`: bytes by path relative to the dashboard directory (`index.html`, `assets/…`). */
  constructor(files: ReadonlyMap<string, Uint8Array>) {
    for (const [path, body] of files) {
      const extension = path.slice(path.lastIndexOf(".") + 1);
      const type = TYPES[extension] ?? "application/octet-stream";
      const text = type.startsWith("text/") || type.includes("json") || type.includes("svg");
      this.#assets.set(path === "index.html" ? "/" : `/${path}`, {
        body,
        gzip: text && body.byteLength >= COMPRESS_FROM_BYTES ? gzipSync(body) : null,
        type,
        etag: `"${fnv1a(body)}"`,
        cacheControl: path === "index.html" ? PAGE_CACHE : ASSET_CACHE,
      });
    }
  }

  /** Paths served, `/` first. */
  get paths(): string[] {
    return [...this.#assets.keys()].sort();
  }

  /** Whether a path is the dashboard's (`/` or under `/assets/`), served or not. */
  static owns(pathname: string): boolean {
    return pathname === "/" || pathname.startsWith(ASSETS_PREFIX);
  }

  /** The answer for `request`, or null when no file of the dashboard has its path. */
  answer(request: Request): Response | null {
    const asset = this.#assets.get(new URL(request.url).pathname);
    if (asset === undefined) return null;
    const headers: Record<string, string> = {
      ...SECURITY_HEADERS,
      "content-type": asset.type,
      "cache-control": asset.cacheControl,
      etag: asset.etag,
      vary: "accept-encoding",
    };
    if (request.headers.get("if-none-match") === asset.etag) {
      return new Response(null, { status: 304, headers });
    }
    let body = asset.body;
    if (asset.gzip !== null && acceptsGzip(request.headers.get("accept-encoding"))) {
      body = asset.gzip;
      headers["content-encoding"] = "gzip";
    }
    headers["content-length"] = String(body.byteLength);
    return new Response(request.method === "HEAD" ? null : body as BodyInit, { headers });
  }
}

/**
 * The dashboard `deno task build:web` built.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { builtDashboard } from "./dashboard.ts";
 * const paths = builtDashboard().paths;
 * assert.equal(paths[0], "/");
 * assert.ok(paths.some((path) => /^\/assets\/app\.[0-9a-f]{12}\.js$/.test(path)));
 * ```
 */
export function builtDashboard(): Dashboard {
  built ??= new Dashboard(
    new Map(Object.entries(DASHBOARD_FILES).map(([path, text]) => [path, encoder.encode(text)])),
  );
  return built;
}

const encoder = new TextEncoder();
/** Built once per process: the gzip of the script costs a few milliseconds. */
let built: Dashboard | undefined;

function acceptsGzip(header: string | null): boolean {
  if (header === null) return false;
  return header.split(",").some((part) => {
    const [name, ...params] = part.trim().split(";");
    const q = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
    return name?.trim().toLowerCase() === "gzip" && (q === undefined || Number(q.slice(2)) > 0);
  });
}

/** A short content hash for the `ETag` (FNV-1a, 32 bits, hex): cheap and synchronous. */
function fnv1a(bytes: Uint8Array): string {
  let hash = 0x811c9dc5;
  for (const byte of bytes) hash = Math.imul(hash ^ byte, 0x01000193);
  return (hash >>> 0).toString(16).padStart(8, "0") + bytes.byteLength.toString(16);
}
