import assert from "node:assert/strict";
import { ManualClock } from "./clock.ts";
import { TokenBucket } from "./rate_limit.ts";

Deno.test("the token bucket allows a burst, then the rate", async () => {
  const clock = new ManualClock(0);
  const bucket = new TokenBucket(2, 3, clock);
  assert.deepEqual([bucket.take(), bucket.take(), bucket.take(), bucket.take()], [
    true,
    true,
    true,
    false,
  ]);
  await clock.advance(500);
  assert.deepEqual([bucket.take(), bucket.take()], [true, false]);
});
