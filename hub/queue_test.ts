import assert from "node:assert/strict";
import { enqueue } from "./overflow.ts";
import { type Delivery, DeliveryQueue } from "./queue.ts";

const event = (frame: string, key = "k"): Delivery => ({ frame, type: "t", key });

async function takeAll(queue: DeliveryQueue, count: number) {
  const taken = [];
  for (let index = 0; index < count; index++) {
    const result = await queue.next();
    assert.equal(result.done, false);
    taken.push(result.value);
  }
  return taken.map(({ delivery, droppedBefore }) => `${delivery.frame}/${droppedBefore}`);
}

Deno.test("the queue bounds events and control replies together", async () => {
  const queue = new DeliveryQueue(3);
  assert.equal(queue.offer(event("a")).state, "ok");
  assert.equal(queue.offer({ frame: "reply", type: "response", key: null }).state, "ok");
  assert.equal(queue.offer(event("b")).state, "ok");
  assert.equal(queue.offer(event("c")).state, "full");
  assert.equal(queue.offer({ frame: "reply 2", type: "response", key: null }).state, "full");
  assert.equal(queue.depth, 3);
  assert.equal(queue.hasRoom, false);
  assert.deepEqual(await takeAll(queue, 3), ["a/0", "reply/0", "b/0"]);
  assert.equal(queue.hasRoom, true);
  queue.close();
  assert.equal(queue.offer(event("d")).state, "closed");
  assert.equal((await queue.next()).done, true);
});

Deno.test("a reply to a full queue drops an event for it, or disconnects when none is left", () => {
  const queue = new DeliveryQueue(2);
  enqueue(queue, event("a"), "drop-oldest");
  enqueue(queue, { frame: "r1", type: "response", key: null }, "drop-oldest");
  assert.deepEqual(enqueue(queue, { frame: "r2", type: "response", key: null }, "drop-oldest"), {
    action: "queued",
    dropped: 1,
    reason: "drop_oldest",
  });
  assert.deepEqual(enqueue(queue, { frame: "r3", type: "response", key: null }, "conflate"), {
    action: "disconnect",
  });
  assert.deepEqual(
    enqueue(new DeliveryQueue(0), { frame: "r", type: "response", key: null }, "disconnect"),
    {
      action: "disconnect",
    },
  );
});

Deno.test("a parked iterator is woken by the next item and ends on close", async () => {
  const queue = new DeliveryQueue(4);
  const pending = queue.next();
  queue.offer(event("x"));
  assert.equal((await pending).value?.delivery.frame, "x");
  const parked = queue.next();
  queue.close();
  assert.equal((await parked).done, true);
});

Deno.test("drop-oldest skips control replies and counts the gap against the next item", async () => {
  const queue = new DeliveryQueue(3);
  queue.offer({ frame: "reply", type: "response", key: null });
  enqueue(queue, event("a"), "drop-oldest");
  enqueue(queue, event("b"), "drop-oldest");
  const outcome = enqueue(queue, event("c"), "drop-oldest");
  assert.deepEqual(outcome, { action: "queued", dropped: 1, reason: "drop_oldest" });
  assert.deepEqual(await takeAll(queue, 3), ["reply/1", "b/0", "c/0"]);
});

Deno.test("conflate keeps the newest event per key and falls back to dropping the oldest", async () => {
  const queue = new DeliveryQueue(3);
  for (const [frame, key] of [["a1", "a"], ["b1", "b"], ["a2", "a"]]) {
    enqueue(queue, event(frame!, key), "conflate");
  }
  const outcome = enqueue(queue, event("b2", "b"), "conflate");
  assert.deepEqual(outcome, { action: "queued", dropped: 2, reason: "conflated" });
  assert.deepEqual(await takeAll(queue, 2), ["a2/2", "b2/0"]);
  const distinct = new DeliveryQueue(2);
  enqueue(distinct, event("x", "x"), "conflate");
  enqueue(distinct, event("y", "y"), "conflate");
  assert.deepEqual(enqueue(distinct, event("z", "z"), "conflate"), {
    action: "queued",
    dropped: 1,
    reason: "drop_oldest",
  });
});

Deno.test("the disconnect policy never drops", () => {
  const queue = new DeliveryQueue(1);
  enqueue(queue, event("a"), "disconnect");
  assert.deepEqual(enqueue(queue, event("b"), "disconnect"), { action: "disconnect" });
  assert.equal(queue.depth, 1);
});
