import assert from "node:assert/strict";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, UnsecuredJWT } from "jose";
import { ManualClock } from "../../hub/clock.ts";
import { loadConfig } from "../config.ts";
import { JWKS_COOLDOWN_MS, JwtVerifier } from "./jwt.ts";

const NOW = Date.UTC(2026, 11, 1);
const claims = { sub: "alice", tenant: "acme", scope: "subscribe:* publish:deploy.*" };

function sign(key: CryptoKey | Uint8Array, alg: string, kid?: string, exp = NOW / 1000 + 600) {
  return new SignJWT(claims)
    .setProtectedHeader(kid === undefined ? { alg } : { alg, kid })
    .setExpirationTime(exp)
    .sign(key);
}

async function keyFile(alg: "RS256" | "ES256" | "EdDSA") {
  const pair = await generateKeyPair(alg, { extractable: true });
  const path = await Deno.makeTempFile({ suffix: ".pem" });
  const pem = await exportSPKI(pair.publicKey);
  await Deno.writeTextFile(path, pem);
  return { pair, path, pem };
}

for (const alg of ["RS256", "ES256", "EdDSA"] as const) {
  Deno.test(`jwt: a ${alg} public key file verifies its tokens and refuses alg none and HS/RS confusion`, async () => {
    const { pair, path, pem } = await keyFile(alg);
    try {
      const clock = new ManualClock(NOW);
      const config = loadConfig({
        HERALD_AUTH: "jwt",
        HERALD_JWT_PUBLIC_KEY_FILE: path,
        HERALD_JWT_ALGORITHM: alg,
      });
      const verifier = await JwtVerifier.create(config, clock);
      const ok = await verifier.verify(await sign(pair.privateKey, alg));
      assert.ok(ok.ok && ok.principal.tenant === "acme" && ok.principal.may.publish);
      assert.equal(ok.ok && ok.principal.expiresAt, NOW + 600_000);

      const unsecured = new UnsecuredJWT(claims).setExpirationTime(NOW / 1000 + 600).encode();
      const none = await verifier.verify(unsecured);
      assert.ok(!none.ok && /algorithm/.test(none.message), JSON.stringify(none));
      // The public key's PEM used as an HMAC secret: the classic confusion attack.
      const confused = await verifier.verify(await sign(new TextEncoder().encode(pem), "HS256"));
      assert.ok(!confused.ok && /algorithm/.test(confused.message));
      const expired = await verifier.verify(
        await sign(pair.privateKey, alg, undefined, NOW / 1000 - 60),
      );
      assert.ok(!expired.ok && expired.message === "the token expired");
    } finally {
      await Deno.remove(path);
    }
  });
}

Deno.test("jwt: skew allows a token just past exp; aud is checked when set; a tenant claim is required", async () => {
  const secret = "a-shared-secret-of-32-bytes-or-more!";
  const key = new TextEncoder().encode(secret);
  const clock = new ManualClock(NOW);
  const verifier = await JwtVerifier.create(
    loadConfig({
      HERALD_AUTH: "jwt",
      HERALD_JWT_SECRET: secret,
      HERALD_JWT_CLOCK_SKEW_SECONDS: "30",
      HERALD_JWT_AUDIENCE: "herald",
    }),
    clock,
  );
  const token = (exp: number, aud = "herald") =>
    new SignJWT({ ...claims, aud }).setProtectedHeader({ alg: "HS256" }).setExpirationTime(exp)
      .sign(key);
  assert.equal((await verifier.verify(await token(NOW / 1000 - 20))).ok, true, "within skew");
  assert.equal((await verifier.verify(await token(NOW / 1000 - 40))).ok, false, "past skew");
  const wrongAudience = await verifier.verify(await token(NOW / 1000 + 60, "other"));
  assert.ok(!wrongAudience.ok && /aud/.test(wrongAudience.message));
  const noTenant = await verifier.verify(
    await new SignJWT({ sub: "x", aud: "herald" }).setProtectedHeader({ alg: "HS256" })
      .setExpirationTime(NOW / 1000 + 60).sign(key),
  );
  assert.ok(!noTenant.ok && /tenant/.test(noTenant.message));
});

Deno.test("jwt: a JWKS is cached, refetched for an unknown kid, and kept when a fetch fails", async () => {
  const first = await generateKeyPair("EdDSA", { extractable: true });
  const second = await generateKeyPair("EdDSA", { extractable: true });
  const jwk = async (pair: typeof first, kid: string) => ({
    ...(await exportJWK(pair.publicKey)),
    kid,
    alg: "EdDSA",
  });
  let keys = [await jwk(first, "k1")];
  let up = true;
  let fetches = 0;
  const fetcher: typeof fetch = () => {
    fetches++;
    return Promise.resolve(
      up ? Response.json({ keys }) : new Response("down", { status: 503 }),
    );
  };
  const clock = new ManualClock(NOW);
  const verifier = await JwtVerifier.create(
    loadConfig({ HERALD_AUTH: "jwt", HERALD_JWT_JWKS_URL: "https://id.example/jwks.json" }),
    clock,
    fetcher,
  );
  const signAt = (key: CryptoKey, kid: string) =>
    sign(key, "EdDSA", kid, Math.floor(clock.now() / 1000) + 600);
  const firstOutcome = await verifier.verify(await signAt(first.privateKey, "k1"));
  assert.equal(firstOutcome.ok, true, JSON.stringify(firstOutcome));
  assert.equal((await verifier.verify(await signAt(first.privateKey, "k1"))).ok, true);
  assert.equal(fetches, 1, "cached");

  // A new key appears: an unknown kid refetches (once the cooldown has passed).
  keys = [...keys, await jwk(second, "k2")];
  await clock.advance(JWKS_COOLDOWN_MS);
  assert.equal((await verifier.verify(await signAt(second.privateKey, "k2"))).ok, true);
  assert.equal(fetches, 2);
  // Within the cooldown an unknown kid does not fetch again.
  const unknown = await verifier.verify(await signAt(second.privateKey, "k3"));
  assert.ok(!unknown.ok && /kid/.test(unknown.message));
  assert.equal(fetches, 2);

  // The identity provider is down past the refresh interval: cached keys still verify.
  up = false;
  await clock.advance(3_600_000);
  assert.equal((await verifier.verify(await signAt(first.privateKey, "k1"))).ok, true);
  await clock.advance(JWKS_COOLDOWN_MS);
  assert.equal((await verifier.verify(await signAt(second.privateKey, "k2"))).ok, true);
  assert.ok(fetches >= 3, "it tried");
});
