/**
 * The resume property shared by the history backends' tests: one producer publishes batches
 * while one client drops its connection at random moments and resumes from the last cursor it
 * got; it must end with every event exactly once, in order.
 * @module
 */

import assert from "node:assert/strict";
import { seeded } from "../cli/demo.ts";
import { type Frame, openTestHub, publishSeqs, TestClient, waitFor } from "./_harness.ts";

/** A small seeded PRNG (the demo's mulberry32), so a failing run can be replayed from its seed. */
export const random: (seed: number) => () => number = seeded;

/** A deploy.step event numbered `n`. */
export function deploy(n: number, appId = "web") {
  return { type: "deploy.step", appId, payload: { step: `s${n}`, status: "running" } };
}

/** True for the `subscribed` reply to a subscribe. */
export function isSubscribed(frame: Frame): boolean {
  return frame.type === "response" && frame.payload?.status === "subscribed";
}

/** Runs the resume property once against a hub started with `env`. */
export async function resumeProperty(seed: number, env: Record<string, string>): Promise<void> {
  {
    const rand = random(seed);
    await using hub = await openTestHub(env);
    const total = 300;
    const published: string[] = [];
    let client = await TestClient.connect(`${hub.wsUrl}?topic=deploy.*`);
    const received: string[] = [];
    const publishing = (async () => {
      let n = 0;
      while (n < total) {
        const size = Math.min(total - n, 1 + Math.floor(rand() * 5));
        const batch = Array.from({ length: size }, () => deploy(n++));
        published.push(...await publishSeqs(hub, batch));
      }
    })();
    let reconnects = 0;
    for (;;) {
      const target = received.length + client.events.length + 1 + Math.floor(rand() * 40);
      const done = await waitFor(
        () =>
          received.length + client.events.length >= Math.min(target, total) ||
          (published.length === total &&
            received.length + client.events.length === total),
        "events before the next disconnect",
        10_000,
      );
      assert.ok(done);
      if (received.length + client.events.length >= total) break;
      // Drop the connection at a random moment: whatever was in flight is lost with it.
      await client.close();
      const frames = client.frames;
      const afterReply = frames.findIndex(isSubscribed);
      if (reconnects > 0) {
        assert.ok(afterReply === 0, "the subscribed reply comes before any replayed event");
        assert.equal(frames[0]!.payload.recovered, true);
      }
      received.push(...client.events.map((event) => event.seq as string));
      const last = received.at(-1);
      client = await TestClient.connect(
        last === undefined
          ? `${hub.wsUrl}?topic=deploy.*`
          : `${hub.wsUrl}?topic=deploy.*&since=${last}`,
      );
      reconnects++;
    }
    await publishing;
    await client.close();
    received.push(...client.events.map((event) => event.seq as string));
    assert.ok(reconnects >= 3, `only ${reconnects} reconnects`);
    assert.equal(new Set(received).size, received.length, "no event twice");
    assert.deepEqual(received, published, "every event once, in order");
  }
}
