/**
 * `deno task build:web`: builds the dashboard into `web/dist/` (checked in, so a fresh
 * checkout serves it without a build): `web/main.ts` bundled for the browser with
 * `deno bundle --minify` (Preact and htm included; nothing is fetched at run time), the style
 * sheet, both under content-hashed names in `assets/`, and `index.html` naming them.
 * `tests/dashboard_test.ts` checks that the checked-in build is what the sources produce.
 * @module
 */

/** Where the built dashboard is written and served from. */
export const DIST = new URL("./dist/", import.meta.url);

const encoder = new TextEncoder();

async function hashOf(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
  return Array.from(digest.slice(0, 6), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function bundle(entry: URL): Promise<Uint8Array> {
  const out = await Deno.makeTempFile({ suffix: ".js" });
  try {
    const { success, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--quiet", "--platform", "browser", "--minify", "-o", out, entry.pathname],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!success) throw new Error(`deno bundle failed:\n${new TextDecoder().decode(stderr)}`);
    return await Deno.readFile(out);
  } finally {
    await Deno.remove(out);
  }
}

/**
 * Builds the dashboard in memory: its files by path relative to `web/dist/`.
 *
 * @example
 * ```ts ignore
 * import { buildDashboard } from "./build.ts";
 * const files = await buildDashboard(); // runs `deno bundle`
 * console.log([...files.keys()]); // ["assets/app.<hash>.js", "assets/app.<hash>.css", "index.html"]
 * ```
 */
export async function buildDashboard(): Promise<Map<string, Uint8Array>> {
  const script = await bundle(new URL("./main.ts", import.meta.url));
  const style = await Deno.readFile(new URL("./style.css", import.meta.url));
  const scriptPath = `assets/app.${await hashOf(script)}.js`;
  const stylePath = `assets/app.${await hashOf(style)}.css`;
  const template = await Deno.readTextFile(new URL("./index.html", import.meta.url));
  const page = template.replace("{{script}}", `/${scriptPath}`).replace(
    "{{style}}",
    `/${stylePath}`,
  );
  return new Map([[scriptPath, script], [stylePath, style], ["index.html", encoder.encode(page)]]);
}

if (import.meta.main) {
  const files = await buildDashboard();
  await Deno.remove(DIST, { recursive: true }).catch(() => {});
  await Deno.mkdir(new URL("assets/", DIST), { recursive: true });
  for (const [path, bytes] of files) await Deno.writeFile(new URL(path, DIST), bytes);
  console.log(`dashboard built into web/dist/: ${[...files.keys()].join(", ")}`);
}
