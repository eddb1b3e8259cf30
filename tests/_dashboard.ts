/**
 * What the dashboard's browser suites share: where their screenshots and measurements go.
 * @module
 */

/** `test-output/dashboard/` (or `$HERALD_TEST_OUTPUT/dashboard/`): files for humans to look at. */
export const OUTPUT = `${
  Deno.env.get("HERALD_TEST_OUTPUT") ?? new URL("../test-output", import.meta.url).pathname
}/dashboard`;
