/**
 * The container health check: exits 0 when this container's hub answers `GET /health` with 200,
 * 1 otherwise. Reads `PORT` like the hub does (default 8800) and asks on loopback. How long it
 * may take is the Dockerfile's `HEALTHCHECK --timeout`.
 *
 *     deno run --allow-net=127.0.0.1 --allow-env=PORT deploy/healthcheck.ts
 * @module
 */

/** Whether the hub on `port` of this host answers /health with 200. */
export async function healthy(port: string): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/health`);
    await response.body?.cancel();
    return response.status === 200;
  } catch {
    return false;
  }
}

if (import.meta.main) Deno.exit(await healthy(Deno.env.get("PORT") || "8800") ? 0 : 1);
