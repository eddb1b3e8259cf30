import assert from "node:assert/strict";
import { systemClock } from "../clock.ts";
import { type EventDraft, EventTooLargeError, UnencodableEventError } from "./history.ts";
import { KV_MAX_FRAME_BYTES, KvHistory } from "./kv.ts";

const LIMITS = { maxEvents: 100, ttlMs: 3_600_000 };

function draft(n: number, payload: Record<string, string> = {}): EventDraft {
  return {
    tenant: "t",
    type: "deploy.step",
    appId: "web",
    payload: { step: `s${n}`, status: "running", ...payload },
    id: `id-${n}`,
    timestamp: new Date(0).toISOString(),
  };
}

async function withKv(run: (path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "herald-kv-" });
  try {
    await run(`${dir}/history.sqlite`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("kv history: cursors count up and reads place them", async () => {
  await withKv(async (path) => {
    const history = new KvHistory(LIMITS, systemClock, path);
    await history.start();
    try {
      const stored = await history.append("t", [draft(1), draft(2), draft(3)]);
      const seqs = stored.map((entry) => entry.event.seq);
      assert.deepEqual(seqs, [1, 2, 3].map((n) => `${history.epoch}-${n}`));
      const page = await history.read("t", { since: seqs[0]!, limit: 10 });
      assert.equal(page.state, "ok");
      assert.deepEqual(page.state === "ok" && page.events.map((e) => e.event.seq), seqs.slice(1));
      assert.deepEqual(page.state === "ok" && page.events[0]!.event.payload, draft(2).payload);
      assert.deepEqual(await history.read("t", { since: "x", limit: 1 }), {
        state: "lost",
        reason: "malformed",
      });
      assert.deepEqual(await history.tenants(), ["t"]);
    } finally {
      await history.close();
    }
  });
});

Deno.test("kv history: too large an event is rejected and nothing of its batch is stored", async () => {
  await withKv(async (path) => {
    const history = new KvHistory(LIMITS, systemClock, path);
    await history.start();
    try {
      await history.append("t", [draft(1)]);
      const big = draft(3, { output: "x".repeat(KV_MAX_FRAME_BYTES) });
      await assert.rejects(
        history.append("t", [draft(2), big]),
        (error: unknown) => error instanceof EventTooLargeError && error.index === 1,
      );
      const next = await history.append("t", [draft(4)]);
      assert.equal(next[0]!.event.seq, `${history.epoch}-2`, "no cursor was used up");
      const page = await history.read("t", { since: null, limit: 10 });
      assert.equal(page.state === "ok" && page.events.length, 2);
    } finally {
      await history.close();
    }
  });
});

Deno.test("kv history: two stores on one file never hand out a cursor twice", async () => {
  await withKv(async (path) => {
    const a = new KvHistory(LIMITS, systemClock, path);
    const b = new KvHistory(LIMITS, systemClock, path);
    await a.start();
    await b.start();
    try {
      assert.equal(a.epoch, b.epoch, "the epoch is kept in the store");
      const writes = [];
      for (let n = 0; n < 20; n++) writes.push((n % 2 === 0 ? a : b).append("t", [draft(n)]));
      const seqs = (await Promise.all(writes)).flat().map((entry) => entry.event.seq);
      assert.equal(new Set(seqs).size, 20);
      const page = await a.read("t", { since: null, limit: 100 });
      assert.equal(page.state === "ok" && page.events.length, 20);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

Deno.test("kv history: count retention drops the oldest and old cursors expire", async () => {
  await withKv(async (path) => {
    const history = new KvHistory({ maxEvents: 3, ttlMs: 3_600_000 }, systemClock, path);
    await history.start();
    try {
      const seqs = (await history.append("t", [1, 2, 3, 4, 5].map((n) => draft(n))))
        .map((entry) => entry.event.seq);
      assert.deepEqual(await history.read("t", { since: seqs[0]!, limit: 10 }), {
        state: "lost",
        reason: "expired",
      });
      const page = await history.read("t", { since: seqs[1]!, limit: 10 });
      assert.equal(page.state === "ok" && page.events.length, 3);
    } finally {
      await history.close();
    }
  });
});

Deno.test("kv history: an event that cannot be encoded rejects its batch and takes no cursor", async () => {
  await withKv(async (path) => {
    const history = new KvHistory(LIMITS, systemClock, path);
    await history.start();
    try {
      await history.append("t", [draft(1)]);
      const bad = { ...draft(3), payload: { big: 1n as unknown as string } };
      await assert.rejects(
        () => history.append("t", [draft(2), bad]),
        (error: unknown) => error instanceof UnencodableEventError && error.index === 1,
      );
      const [next] = await history.append("t", [draft(4)]);
      assert.equal(next!.event.seq, `${history.epoch}-2`);
      const page = await history.read("t", { since: `${history.epoch}-1`, limit: 10 });
      assert.deepEqual(page.state === "ok" && page.events.map((e) => e.event.id), ["id-4"]);
    } finally {
      await history.close();
    }
  });
});
