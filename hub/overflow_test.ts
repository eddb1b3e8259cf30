import assert from "node:assert/strict";
import { enqueue } from "./overflow.ts";
import { type Delivery, DeliveryQueue } from "./queue.ts";

const event = (frame: string, key = frame): Delivery => ({ frame, type: "t", key });

function full(...frames: Delivery[]): DeliveryQueue {
  const queue = new DeliveryQueue(frames.length);
  for (const frame of frames) queue.offer(frame);
  return queue;
}

const frames = (queue: DeliveryQueue) => {
  const out: string[] = [];
  for (let taken = queue.shift(); taken !== undefined; taken = queue.shift()) {
    out.push(`${taken.droppedBefore}:${taken.delivery.frame}`);
  }
  return out;
};

Deno.test("overflow: disconnect drops nothing and asks for the close", () => {
  const queue = full(event("a"), event("b"));
  assert.deepEqual(enqueue(queue, event("c"), "disconnect"), { action: "disconnect" });
  assert.deepEqual(frames(queue), ["0:a", "0:b"]);
});

Deno.test("overflow: drop-oldest makes room with the oldest event, control replies stay", () => {
  const queue = full(event("a"), event("b"), { frame: "reply", type: "response", key: null });
  assert.deepEqual(enqueue(queue, event("c"), "drop-oldest"), {
    action: "queued",
    dropped: 1,
    reason: "drop_oldest",
  });
  assert.deepEqual(frames(queue), ["1:b", "0:reply", "0:c"]);
});

Deno.test("overflow: conflate drops what a newer event of the same key supersedes, else the oldest", () => {
  const queue = full(event("a1", "a"), event("b1", "b"), event("a2", "a"));
  assert.deepEqual(enqueue(queue, event("a3", "a"), "conflate"), {
    action: "queued",
    dropped: 2,
    reason: "conflated",
  });
  assert.deepEqual(frames(queue), ["2:b1", "0:a3"]);
  const distinct = full(event("x"), event("y"));
  assert.deepEqual(enqueue(distinct, event("z"), "conflate"), {
    action: "queued",
    dropped: 1,
    reason: "drop_oldest",
  });
  assert.deepEqual(frames(distinct), ["1:y", "0:z"]);
});

Deno.test("overflow: a closed queue says so under every policy", () => {
  for (const policy of ["disconnect", "drop-oldest", "conflate"] as const) {
    const queue = full(event("a"));
    queue.close();
    assert.deepEqual(enqueue(queue, event("b"), policy), { action: "closed" });
  }
});
