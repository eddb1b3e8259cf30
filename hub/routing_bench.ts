/**
 * Routing cost per published event by dialect: `deno bench -A hub/routing_bench.ts`. 1000
 * clients on transports that keep up and discard what they are sent; each dialect's frame is
 * built once per event, so dorgu and mixed hubs should route within a small factor of
 * Herald-only ones, and a user-filtered hub should cost what its matches cost.
 * @module
 */

import type { Dialect } from "../events/dialects.ts";
import { testHub, topic } from "./_test_hub.ts";
import { principal } from "./principal.ts";
import type { Transport } from "./transport.ts";

const CLIENTS = 1000;
const discard: Transport = { send() {}, bufferedAmount: 0, close() {} };

async function hubWith(dialectOf: (n: number) => Dialect, userOf?: (n: number) => string) {
  const { hub } = await testHub({ maxSubscriptions: 10 });
  for (let n = 0; n < CLIENTS; n++) {
    const client = hub.connect(discard, principal("t", "bench", false), "bench");
    const dialect = dialectOf(n);
    const filter = userOf === undefined ? {} : { userId: userOf(n) };
    hub.subscribe(client, topic("persona.*"), filter, {
      dialect,
      ...(dialect === "dorgu" && { name: "personas" }),
    });
  }
  return hub;
}

const event = {
  type: "persona.updated",
  userId: "user7",
  payload: { namespace: "production", name: "nginx", phase: "Degraded", health: "Unhealthy" },
};
const dialects: Dialect[] = ["herald", "dorgu", "streamspace"];

const herald = await hubWith(() => "herald");
const dorgu = await hubWith(() => "dorgu");
const mixed = await hubWith((n) => dialects[n % 3]!);
const users = await hubWith(() => "streamspace", (n) => `user${n}`);

Deno.bench("1000 Herald clients", { group: "route", baseline: true }, async () => {
  await herald.publish("t", [event]);
});
Deno.bench("1000 dorgu clients", { group: "route" }, async () => {
  await dorgu.publish("t", [event]);
});
Deno.bench("1000 clients, three dialects", { group: "route" }, async () => {
  await mixed.publish("t", [event]);
});
Deno.bench("1000 StreamSpace clients of 1000 users, 1 matches", { group: "route" }, async () => {
  await users.publish("t", [event]);
});
