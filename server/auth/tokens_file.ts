/**
 * `HERALD_AUTH=token`: a JSON tokens file maps each token to a tenant, a name and scopes:
 * `{"tokens":[{"token":"…","tenant":"acme","name":"acme-ci","scopes":["publish:deploy.*"]}]}`.
 * Only SHA-256 hashes of the tokens are kept in memory, and a presented token is looked up by its
 * hash, so no comparison depends on the secret's bytes. The file is reloaded on SIGHUP and when
 * it changes; a bad file keeps the tokens loaded before and logs why (never a token). After a
 * good reload its listener learns how each principal it handed out stands now, so live
 * connections of a removed token can be cut.
 * @module
 */

import { createHash } from "node:crypto";
import type { Principal, Reauthorize } from "../../hub/principal.ts";
import { logger } from "../log.ts";
import { grantsOf, isTenantName } from "./scopes.ts";

/** Shortest token accepted in a tokens file. */
export const MIN_TOKEN_LENGTH = 16;

const log = logger("auth");

/** The tokens of one file, by the hash of each token. */
export type TokenTable = ReadonlyMap<string, Principal>;

/** SHA-256 of a token, hex. */
export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/**
 * Parses a tokens file's text into a table, or says what is wrong with it (never quoting a
 * token).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hashToken, parseTokensFile } from "./tokens_file.ts";
 * const table = parseTokensFile(JSON.stringify({ tokens: [
 *   { token: "s3cr3t-at-least-16-chars", tenant: "acme", name: "dash", scopes: ["subscribe:*"] },
 * ] }));
 * assert.ok(typeof table !== "string");
 * assert.equal(table.get(hashToken("s3cr3t-at-least-16-chars"))?.tenant, "acme");
 * assert.match(parseTokensFile('{"tokens":[{"token":"short"}]}') as string, /tokens\[0\]/);
 * ```
 */
export function parseTokensFile(text: string): TokenTable | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return "the file is not valid JSON";
  }
  const tokens = (parsed as { tokens?: unknown } | null)?.tokens;
  if (typeof parsed !== "object" || parsed === null || !Array.isArray(tokens)) {
    return 'the file must be a JSON object {"tokens":[...]}';
  }
  const table = new Map<string, Principal>();
  const names = new Set<string>();
  for (const [index, entry] of tokens.entries()) {
    const at = `tokens[${index}]`;
    if (typeof entry !== "object" || entry === null) return `${at} is not an object`;
    const { token, tenant, name, scopes } = entry as Record<string, unknown>;
    if (typeof token !== "string" || token.length < MIN_TOKEN_LENGTH || /\s/.test(token)) {
      return `${at}.token must be a string of at least ${MIN_TOKEN_LENGTH} characters without spaces`;
    }
    if (!isTenantName(tenant)) {
      return `${at}.tenant must be 1-64 letters, digits, "_", "." or "-"`;
    }
    if (typeof name !== "string" || name.length === 0 || name.length > 128) {
      return `${at}.name must be a string of 1-128 characters`;
    }
    if (!Array.isArray(scopes) || !scopes.every((scope) => typeof scope === "string")) {
      return `${at}.scopes must be an array of strings`;
    }
    const grants = grantsOf(scopes as string[], true);
    if (typeof grants === "string") return `${at}: ${grants}`;
    const hash = hashToken(token);
    if (table.has(hash)) return `${at}.token appears twice`;
    if (names.has(`${tenant}/${name}`)) return `${at}.name "${name}" appears twice in "${tenant}"`;
    names.add(`${tenant}/${name}`);
    table.set(hash, {
      tenant,
      subject: name,
      may: grants,
      expiresAt: null,
      credential: `token:${tenant}/${name}`,
    });
  }
  return table;
}

/**
 * The tokens file, loaded at start and reloaded on SIGHUP and when it changes. A file that is
 * missing, too large or invalid at a reload keeps the previous table.
 */
export class TokensFile {
  readonly path: string;
  readonly #maxBytes: number;
  #table: TokenTable = new Map();
  #watcher: Deno.FsWatcher | null = null;
  #onSignal: (() => void) | null = null;
  #debounce: ReturnType<typeof setTimeout> | undefined;
  #reloads: Promise<boolean> = Promise.resolve(true);
  readonly #onReload: (ok: boolean) => void;
  /**
   * The hash of the token behind every principal this file handed out, from any load: a live
   * connection holds its principal, never its token, and is found again through it.
   */
  readonly #hashes = new WeakMap<Principal, string>();
  #onChange: ((reauthorize: Reauthorize) => void) | null = null;

  /** `onReload` hears the outcome of every load (for `/metrics`). */
  constructor(path: string, maxBytes: number, onReload: (ok: boolean) => void = () => {}) {
    this.path = path;
    this.#maxBytes = maxBytes;
    this.#onReload = onReload;
  }

  /** The principal a token stands for, or undefined. */
  lookup(token: string): Principal | undefined {
    return this.#table.get(hashToken(token));
  }

  /**
   * Calls `listener` after every reload that replaced the table, with how each principal this
   * file handed out stands now: the current entry of its token, or null once it is gone. A
   * principal from elsewhere (an agent key) stands as it is.
   */
  onChange(listener: (reauthorize: Reauthorize) => void): void {
    this.#onChange = listener;
  }

  readonly #reauthorize: Reauthorize = (who) => {
    const hash = this.#hashes.get(who);
    if (hash === undefined) return who;
    return this.#table.get(hash) ?? null;
  };

  /** How many tokens are loaded. */
  get size(): number {
    return this.#table.size;
  }

  /** Reads the file; resolves true when the new table replaced the old one. */
  reload(): Promise<boolean> {
    this.#reloads = this.#reloads.then(() => this.#load());
    return this.#reloads;
  }

  async #load(): Promise<boolean> {
    const problem = await this.#read();
    if (typeof problem === "string") {
      log.error("Kept the previous tokens: {path} {reason}", { path: this.path, reason: problem });
      this.#onReload(false);
      return false;
    }
    this.#table = this.#keepUnchanged(problem);
    for (const [hash, principal] of this.#table) this.#hashes.set(principal, hash);
    this.#onReload(true);
    log.info("Loaded {count} tokens from {path}", { count: problem.size, path: this.path });
    this.#onChange?.(this.#reauthorize);
    return true;
  }

  /**
   * `next` with the principal of each entry that did not change taken from the current table,
   * so a reload that leaves a token alone leaves its connections alone (same object: no recheck).
   */
  #keepUnchanged(next: TokenTable): TokenTable {
    const kept = new Map<string, Principal>();
    for (const [hash, principal] of next) {
      const current = this.#table.get(hash);
      const same = current !== undefined && JSON.stringify(current) === JSON.stringify(principal);
      kept.set(hash, same ? current : principal);
    }
    return kept;
  }

  async #read(): Promise<TokenTable | string> {
    let text: string;
    try {
      const { size } = await Deno.stat(this.path);
      if (size > this.#maxBytes) {
        return `is ${size} bytes, more than HERALD_TOKENS_FILE_MAX_BYTES (${this.#maxBytes})`;
      }
      text = await Deno.readTextFile(this.path);
    } catch (error) {
      return `could not be read (${errorName(error)})`;
    }
    if (text.length > this.#maxBytes) return "grew past HERALD_TOKENS_FILE_MAX_BYTES";
    return parseTokensFile(text);
  }

  /** Reloads on SIGHUP and when the file (or its directory entry) changes. */
  watch(): void {
    try {
      const onSignal = () => void this.reload();
      Deno.addSignalListener("SIGHUP", onSignal);
      this.#onSignal = onSignal;
    } catch {
      // No SIGHUP here (Windows, Deno Deploy): changes to the file still reload it.
    }
    const slash = this.path.lastIndexOf("/");
    const directory = slash === -1 ? "." : this.path.slice(0, slash) || "/";
    const file = this.path.slice(slash + 1);
    try {
      this.#watcher = Deno.watchFs(directory, { recursive: false });
    } catch (error) {
      const reason = errorName(error);
      log.warning("Cannot watch {path} for changes ({reason}); reload with SIGHUP", {
        path: this.path,
        reason,
      });
      return;
    }
    void (async () => {
      try {
        for await (const event of this.#watcher!) {
          // Editors replace files by rename: watch the directory, match the name.
          if (!event.paths.some((path) => path.endsWith(`/${file}`) || path === file)) continue;
          clearTimeout(this.#debounce);
          this.#debounce = setTimeout(() => void this.reload(), 50);
        }
      } catch {
        // Closed.
      }
    })();
  }

  /** Stops watching. */
  close(): void {
    clearTimeout(this.#debounce);
    if (this.#onSignal !== null) Deno.removeSignalListener("SIGHUP", this.#onSignal);
    this.#onSignal = null;
    try {
      this.#watcher?.close();
    } catch {
      // Already closed.
    }
    this.#watcher = null;
  }
}

/** An error's class name: never its message, which may quote the file. */
function errorName(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}
