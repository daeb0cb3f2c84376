import { createHmac, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createIdentitySigner, createIdentityVerifier, type Identity } from "./identity.js";

const secret = randomBytes(32);
const identity: Identity = { userId: "u1", tier: "pro", roles: ["a", "b"], sessionId: "s1" };

describe("identity assertion", () => {
  it("round-trips a signed identity", () => {
    const { assertion } = createIdentitySigner({ secret }).sign(identity);
    expect(createIdentityVerifier({ secret }).verify(assertion)).toEqual(identity);
  });

  it("refuses another key, a tampered payload, alg none and an expired assertion", () => {
    const verifier = createIdentityVerifier({ secret });
    const other = createIdentitySigner({ secret: randomBytes(32) }).sign(identity).assertion;
    expect(verifier.verify(other)).toBeUndefined();

    const [h, p, s] = createIdentitySigner({ secret }).sign(identity).assertion.split(".");
    const payload = JSON.parse(Buffer.from(p as string, "base64url").toString());
    const tampered = Buffer.from(JSON.stringify({ ...payload, sub: "admin" })).toString("base64url");
    expect(verifier.verify(`${h}.${tampered}.${s}`)).toBeUndefined();

    const none = Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url");
    expect(verifier.verify(`${none}.${p}.`)).toBeUndefined();
    const hs512 = Buffer.from(JSON.stringify({ alg: "HS512", typ: "JWT" })).toString("base64url");
    const mac = createHmac("sha512", secret).update(`${hs512}.${p}`).digest("base64url");
    expect(verifier.verify(`${hs512}.${p}.${mac}`)).toBeUndefined();

    const old = createIdentitySigner({ secret, ttlSeconds: 60 }).sign(identity, Math.floor(Date.now() / 1000) - 3600);
    expect(verifier.verify(old.assertion)).toBeUndefined();
    expect(verifier.verify(undefined)).toBeUndefined();
    expect(verifier.verify("x".repeat(10_000))).toBeUndefined();
  });

  it("refuses a secret shorter than 32 bytes at creation", () => {
    expect(() => createIdentitySigner({ secret: "short" })).toThrow(/at least 32/);
  });
});
