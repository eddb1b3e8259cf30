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

Deno.test("the queue refuses events past capacity but always takes control replies", async () => {
  const queue = new DeliveryQueue(2);
  assert.equal(queue.offer(event("a")).state, "ok");
  assert.equal(queue.offer(event("b")).state, "ok");
  assert.equal(queue.offer(event("c")).state, "full");
  queue.pushControl("reply", "response");
  assert.equal(queue.depth, 3);
  assert.deepEqual(await takeAll(queue, 3), ["a/0", "b/0", "reply/0"]);
  queue.close();
  assert.equal(queue.offer(event("d")).state, "closed");
  assert.equal((await queue.next()).done, true);
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
  const queue = new DeliveryQueue(2);
  queue.pushControl("reply", "response");
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
