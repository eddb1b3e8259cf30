import assert from "node:assert/strict";
import { type ExpiryWarning, ExpiryWatch, type Schedule } from "./expiry.ts";
import type { FakeTransport } from "./_fake_transport.ts";
import { testHub } from "./_test_hub.ts";

/** A schedule that records its timers; the test runs them when it decides they are due. */
function manualSchedule() {
  const timers: { run: () => void; ms: number; cancelled: boolean }[] = [];
  const schedule: Schedule = (run, ms) => {
    const timer = { run, ms, cancelled: false };
    timers.push(timer);
    return () => (timer.cancelled = true);
  };
  /** Runs the newest timer, which must be the only live one. */
  const fire = () => {
    const live = timers.filter((timer) => !timer.cancelled);
    assert.equal(live.length, 1, "one timer at a time");
    live[0]!.cancelled = true;
    live[0]!.run();
  };
  return { timers, schedule, fire };
}

const closeCode = (transport: FakeTransport) => transport.closed?.code;

const warnings = (transport: FakeTransport) =>
  transport.messages.filter((message) => message.payload?.code === "token_expiring");

Deno.test("expiry: one warning carrying expiresAt, warningMs before expiry, then 4001", async () => {
  const { clock, connect } = await testHub();
  const { timers, schedule, fire } = manualSchedule();
  const { client, transport } = connect();
  const expiresAt = clock.now() + 5000;
  new ExpiryWatch(client, { clock, warningMs: 2000, schedule }).arm(expiresAt);
  assert.equal(timers.at(-1)!.ms, 3000);
  await clock.advance(3000);
  fire();
  const [warning, ...more] = warnings(transport);
  assert.deepEqual(more, []);
  assert.deepEqual(warning, {
    type: "error",
    payload: {
      code: "token_expiring",
      message:
        'the credential expires in 2 s: send {"type":"refresh","token":"..."} or reconnect with a new one',
      expiresAt: new Date(expiresAt).toISOString(),
    },
  });
  assert.equal(transport.sent.at(-1)!.type, "error");
  assert.equal(closeCode(transport), undefined, "still open");
  assert.equal(timers.at(-1)!.ms, 2000);
  await clock.advance(2000);
  fire();
  assert.equal(transport.closed?.code, 4001);
  assert.equal(warnings(transport).length, 1, "warned once");
});

Deno.test("expiry: armed inside the window, the warning goes out at once", async () => {
  const { clock, connect } = await testHub();
  const { timers, schedule } = manualSchedule();
  const { client, transport } = connect();
  new ExpiryWatch(client, { clock, warningMs: 60_000, schedule }).arm(clock.now() + 10_000);
  assert.equal(warnings(transport).length, 1);
  assert.equal(timers.length, 1, "only the expiry is left to wait for");
  assert.equal(timers[0]!.ms, 10_000);
});

Deno.test("expiry: a timer that wakes early (capped) waits again instead of warning early", async () => {
  const { clock, connect } = await testHub();
  const { timers, schedule, fire } = manualSchedule();
  const { client, transport } = connect();
  new ExpiryWatch(client, { clock, warningMs: 1000, schedule }).arm(clock.now() + 10_000);
  await clock.advance(4000);
  fire();
  assert.deepEqual(warnings(transport), []);
  assert.equal(timers.at(-1)!.ms, 5000);
  await clock.advance(5000);
  fire();
  assert.equal(warnings(transport).length, 1);
});

Deno.test("expiry: warningMs 0 sends no warning, only the close", async () => {
  const { clock, connect } = await testHub();
  const { schedule, fire } = manualSchedule();
  const { client, transport } = connect();
  new ExpiryWatch(client, { clock, warningMs: 0, schedule }).arm(clock.now() + 1000);
  await clock.advance(1000);
  fire();
  assert.deepEqual(warnings(transport), []);
  assert.equal(transport.closed?.code, 4001);
});

Deno.test("expiry: a transport's warning names its own message type and advice", async () => {
  const { clock, connect } = await testHub();
  const { schedule } = manualSchedule();
  const { client, transport } = connect();
  const warning: ExpiryWarning = { type: "token_expiring", advice: "reconnect" };
  new ExpiryWatch(client, { clock, warningMs: 5000, warning, schedule }).arm(clock.now() + 3000);
  assert.equal(transport.sent.at(-1)!.type, "token_expiring");
  assert.equal(warnings(transport)[0]!.payload.message, "the credential expires in 3 s: reconnect");
});
