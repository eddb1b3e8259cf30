/**
 * The publish token: from `HERALD_PUBLISH_TOKEN`, or generated once and kept in the data
 * directory with mode 0600. The token itself is never logged, only where it is.
 * @module
 */

import { timingSafeEqual } from "node:crypto";

/** Where the token came from, for the start-up log line. */
export type TokenSource =
  | { readonly kind: "environment" }
  | { readonly kind: "file"; readonly path: string; readonly created: boolean }
  | { readonly kind: "ephemeral"; readonly reason: string };

/** The token and where it came from. */
export interface PublishToken {
  readonly token: string;
  readonly source: TokenSource;
}

const TOKEN_FILE = "publish-token";

function generateToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/**
 * Returns the configured token, or reads (creating on first start) `<dataDir>/publish-token`
 * (or `<dataDir>/<fileName>`: the agent key is kept the same way in `agent-key`).
 * Where the filesystem is read-only (Deno Deploy), an ephemeral token is generated and the
 * caller warns that `HERALD_PUBLISH_TOKEN` should be set.
 */
export async function loadPublishToken(
  configured: string | undefined,
  dataDir: string,
  fileName: string = TOKEN_FILE,
): Promise<PublishToken> {
  if (configured !== undefined) return { token: configured, source: { kind: "environment" } };
  const path = `${dataDir.replace(/\/+$/, "")}/${fileName}`;
  try {
    const existing = (await Deno.readTextFile(path)).trim();
    if (existing.length >= 16) {
      return { token: existing, source: { kind: "file", path, created: false } };
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      return { token: generateToken(), source: { kind: "ephemeral", reason: String(error) } };
    }
  }
  const token = generateToken();
  try {
    await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
    await Deno.writeTextFile(path, token + "\n", { mode: 0o600 });
    await Deno.chmod(path, 0o600);
    return { token, source: { kind: "file", path, created: true } };
  } catch (error) {
    return { token, source: { kind: "ephemeral", reason: String(error) } };
  }
}

const encoder = new TextEncoder();

/** A secret compared in constant time; encoded once, not on every request. */
export class SecretToken {
  readonly #bytes: Uint8Array;

  constructor(token: string) {
    this.#bytes = encoder.encode(token);
  }

  /** True when `presented` is the token. */
  matches(presented: string | null): boolean {
    if (presented === null) return false;
    const bytes = encoder.encode(presented);
    return bytes.byteLength === this.#bytes.byteLength && timingSafeEqual(bytes, this.#bytes);
  }
}

/** The bearer token of an `Authorization` header, or null. */
export function bearerToken(request: Request): string | null {
  const header = request.headers.get("authorization");
  const match = header?.match(/^Bearer\s+(\S+)\s*$/i);
  return match?.[1] ?? null;
}
