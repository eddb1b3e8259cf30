import assert from "node:assert/strict";
import { TARGETS } from "../_load.ts";
import { roundOrder } from "../scenarios.ts";
import { spread } from "./judge.ts";

Deno.test("spread gives the median and the range, and NaN without samples", () => {
  assert.deepEqual(spread([3, 1, 2]), { median: 2, min: 1, max: 3 });
  assert.deepEqual(spread([4, 1, 2, 3]), { median: 2.5, min: 1, max: 4 });
  assert.deepEqual(spread([5, NaN]), { median: 5, min: 5, max: 5 });
  assert.ok(Number.isNaN(spread([]).median));
});

Deno.test("rounds rotate the order, so every server runs once in every position", () => {
  const rounds = TARGETS.map((_, round) => roundOrder(round));
  for (const order of rounds) assert.deepEqual([...order].sort(), [...TARGETS].sort());
  TARGETS.forEach((_, position) => {
    assert.deepEqual(rounds.map((order) => order[position]).sort(), [...TARGETS].sort());
  });
  assert.deepEqual(roundOrder(0), [...TARGETS]);
});
