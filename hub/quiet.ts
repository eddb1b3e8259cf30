/**
 * The cursors of routed events that were not broadcast (a consumer such as live state said
 * they change nothing anyone should see), remembered per tenant so a replay leaves them out
 * too: live, resumed and SSE clients see one stream.
 * @module
 */

/**
 * A bounded record of quiet cursors per tenant: past `max` a tenant's oldest is forgotten.
 * Sized to the history's retention, it covers every retained event.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { QuietCursors } from "./quiet.ts";
 * const quiet = new QuietCursors(2);
 * quiet.add("t", "e-1");
 * quiet.add("t", "e-2");
 * quiet.add("t", "e-3");
 * assert.deepEqual([quiet.has("t", "e-1"), quiet.has("t", "e-3"), quiet.has("u", "e-3")], [
 *   false,
 *   true,
 *   false,
 * ]);
 * ```
 */
export class QuietCursors {
  readonly #max: number;
  readonly #tenants = new Map<string, Set<string>>();

  constructor(max: number) {
    this.#max = max;
  }

  add(tenant: string, seq: string): void {
    let cursors = this.#tenants.get(tenant);
    if (cursors === undefined) {
      cursors = new Set();
      this.#tenants.set(tenant, cursors);
    }
    cursors.add(seq);
    if (cursors.size > this.#max) cursors.delete(cursors.values().next().value!);
  }

  has(tenant: string, seq: string): boolean {
    return this.#tenants.get(tenant)?.has(seq) ?? false;
  }
}
