import { generateKeyPairSync } from "node:crypto";
import { createServer } from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { Code } from "@connectrpc/connect";
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, importJWK, type JWK, jwtVerify, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { createAccessTokens } from "../src/access-tokens.js";
import { createSigningKeys } from "../src/signing-keys.js";
import { codeOf, errorOf, signUp, storedState, useTestAuth } from "./test-auth.js";

const t = useTestAuth("access_tokens");

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** The token with one base64url character of its signature changed: the same header and claims, a wrong signature. */
function withFlippedSignature(token: string): string {
  const [h, p, s] = token.split(".") as [string, string, string];
  return `${h}.${p}.${s.slice(0, 10)}${s[10] === "A" ? "B" : "A"}${s.slice(11)}`;
}

async function currentKey() {
  const { rows } = await t.db.query<{ kid: string; private_jwk: JWK | string; public_jwk: JWK | string }>(
    "select kid, private_jwk, public_jwk from signing_keys where retired_at is null",
  );
  const row = rows[0]!;
  const parse = (v: JWK | string): JWK => (typeof v === "string" ? JSON.parse(v) : v);
  return { kid: row.kid, privateKey: await importJWK(parse(row.private_jwk), "ES256"), publicJwk: parse(row.public_jwk) };
}

/** A token signed with the service's real key, with `changes` applied to the claims and header. */
async function forge(claims: Record<string, unknown>, header: Record<string, unknown> = {}) {
  const { user, sessionId } = await signUp(t);
  const key = await currentKey();
  const now = Math.floor(Date.now() / 1000);
  const payload = {
    iss: "portico-auth",
    aud: "portico",
    sub: user.id,
    sid: sessionId,
    tier: "free",
    roles: [],
    jti: crypto.randomUUID(),
    iat: now,
    nbf: now,
    exp: now + 900,
    ...claims,
  };
  return new SignJWT(payload).setProtectedHeader({ alg: "ES256", kid: key.kid, typ: "at+jwt", ...header }).sign(key.privateKey);
}

async function jwksOverHttp(url: string): Promise<{ status: number; type: string; body: string }> {
  const session = http2.connect(url);
  try {
    return await new Promise((resolve, reject) => {
      const req = session.request({ ":path": "/.well-known/jwks.json" });
      let body = "";
      let status = 0;
      let type = "";
      req.on("response", (h) => {
        status = Number(h[":status"]);
        type = String(h["content-type"]);
      });
      req.setEncoding("utf8");
      req.on("data", (chunk) => (body += chunk));
      req.on("end", () => resolve({ status, type, body }));
      req.on("error", reject);
      req.end();
    });
  } finally {
    session.close();
  }
}

describe("access tokens", () => {
  it("carry kid, iss, aud, sub, exp about 15 minutes out, nbf, iat, jti, session, tier and roles", async () => {
    const { tokens, user, sessionId } = await signUp(t);
    const header = decodeProtectedHeader(tokens.accessToken);
    expect(header).toMatchObject({ alg: "ES256", typ: "at+jwt" });
    expect(header.kid).toBeTruthy();
    const claims = decodeJwt(tokens.accessToken);
    expect(claims).toMatchObject({ iss: "portico-auth", aud: "portico", sub: user.id, sid: sessionId, tier: "free", roles: [] });
    expect(claims.jti).toMatch(/^[0-9a-f-]{36}$/);
    expect(claims.exp! - claims.iat!).toBe(900);
    expect(claims.nbf).toBe(claims.iat);
  });

  it("verify with the published JWKS (RPC and /.well-known/jwks.json)", async () => {
    const { tokens } = await signUp(t);
    const { jwksJson } = await t.gateway.getJwks({});
    const jwks = JSON.parse(jwksJson) as { keys: JWK[] };
    expect(jwks.keys.length).toBeGreaterThan(0);
    for (const key of jwks.keys) expect(key).not.toHaveProperty("d");
    await jwtVerify(tokens.accessToken, createLocalJWKSet(jwks), { issuer: "portico-auth", audience: "portico" });
    const http = await jwksOverHttp(t.auth.url);
    expect(http.status).toBe(200);
    expect(http.type).toContain("json");
    expect(JSON.parse(http.body)).toEqual(jwks);
  });
});

describe("Authenticate refuses bad tokens with unauthenticated and changes nothing", () => {
  it("a tampered payload or signature", async () => {
    const { tokens } = await signUp(t);
    const before = await storedState(t.db);
    const [h, p, s] = tokens.accessToken.split(".") as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, "base64url").toString());
    const promoted = b64({ ...claims, roles: ["auth.admin"] });
    expect(await codeOf(t.gateway.authenticate({ accessToken: `${h}.${promoted}.${s}` }))).toBe(Code.Unauthenticated);
    expect(await codeOf(t.gateway.authenticate({ accessToken: withFlippedSignature(tokens.accessToken) }))).toBe(
      Code.Unauthenticated,
    );
    expect(await storedState(t.db)).toEqual(before);
  });

  it('alg "none" and an HS256 token signed with the public key as the secret', async () => {
    const { tokens } = await signUp(t);
    const [h, p] = tokens.accessToken.split(".") as [string, string];
    const header = JSON.parse(Buffer.from(h, "base64url").toString());
    const none = `${b64({ ...header, alg: "none" })}.${p}.`;
    expect(await codeOf(t.gateway.authenticate({ accessToken: none }))).toBe(Code.Unauthenticated);
    const key = await currentKey();
    const claims = decodeJwt(tokens.accessToken);
    for (const secret of [JSON.stringify(key.publicJwk), key.publicJwk.x!]) {
      const hs = await new SignJWT(claims)
        .setProtectedHeader({ alg: "HS256", kid: key.kid, typ: "at+jwt" })
        .sign(new TextEncoder().encode(secret));
      const error = await errorOf(t.gateway.authenticate({ accessToken: hs }));
      expect(error.code).toBe(Code.Unauthenticated);
      expect(error.rawMessage).toContain("algorithm");
    }
  });

  it("expired, and nbf in the future, beyond the 30 s clock skew", async () => {
    const now = Math.floor(Date.now() / 1000);
    const expired = await errorOf(
      t.gateway.authenticate({ accessToken: await forge({ iat: now - 1000, nbf: now - 1000, exp: now - 31 }) }),
    );
    expect(expired.code).toBe(Code.Unauthenticated);
    expect(expired.rawMessage).toContain("expired");
    const early = await errorOf(t.gateway.authenticate({ accessToken: await forge({ nbf: now + 60 }) }));
    expect(early.code).toBe(Code.Unauthenticated);
    expect(early.rawMessage).toContain("not valid yet");
    // Within the skew both still pass.
    expect(await codeOf(t.gateway.authenticate({ accessToken: await forge({ exp: now - 10 }) }))).toBe("ok");
    expect(await codeOf(t.gateway.authenticate({ accessToken: await forge({ nbf: now + 10 }) }))).toBe("ok");
  });

  it("wrong aud or iss, a missing session claim, or another token type", async () => {
    for (const claims of [{ aud: "someone-else" }, { iss: "https://evil.example" }, { sid: undefined }, { sub: undefined }]) {
      expect(await codeOf(t.gateway.authenticate({ accessToken: await forge(claims) }))).toBe(Code.Unauthenticated);
    }
    expect(await codeOf(t.gateway.authenticate({ accessToken: await forge({}, { typ: "JWT" }) }))).toBe(Code.Unauthenticated);
  });

  it("an unknown kid", async () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const { user, sessionId } = await signUp(t);
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ sid: sessionId, tier: "free", roles: ["auth.admin"], jti: crypto.randomUUID() })
      .setProtectedHeader({ alg: "ES256", kid: "attacker-key", typ: "at+jwt" })
      .setIssuer("portico-auth")
      .setAudience("portico")
      .setSubject(user.id)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + 900)
      .sign(privateKey);
    const error = await errorOf(t.gateway.authenticate({ accessToken: token }));
    expect(error.code).toBe(Code.Unauthenticated);
    expect(error.rawMessage).toContain("unknown key");
  });

  it("a jku header, which is never fetched", async () => {
    let fetched = 0;
    const attacker = createServer((_req, res) => {
      fetched++;
      res.end("{}");
    });
    await new Promise<void>((resolve) => attacker.listen(0, "127.0.0.1", resolve));
    const jku = `http://127.0.0.1:${(attacker.address() as AddressInfo).port}/jwks.json`;
    try {
      const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
      const { user, sessionId } = await signUp(t);
      const own = await new SignJWT({ sid: sessionId, tier: "free", roles: [], jti: crypto.randomUUID() })
        .setProtectedHeader({ alg: "ES256", kid: "attacker-key", typ: "at+jwt", jku })
        .setIssuer("portico-auth")
        .setAudience("portico")
        .setSubject(user.id)
        .setIssuedAt()
        .setNotBefore("0s")
        .setExpirationTime("15m")
        .sign(privateKey);
      expect(await codeOf(t.gateway.authenticate({ accessToken: own }))).toBe(Code.Unauthenticated);
      // Even the service's own signature does not make a key reference acceptable.
      expect(await codeOf(t.gateway.authenticate({ accessToken: await forge({}, { jku }) }))).toBe(Code.Unauthenticated);
      expect(fetched).toBe(0);
    } finally {
      attacker.close();
    }
  });

  it("oversized and non-JWT strings, including SQL", async () => {
    for (const accessToken of ["x".repeat(10_000), "' or 1=1 --", "a.b.c", "..", "Bearer abc"]) {
      expect(await codeOf(t.gateway.authenticate({ accessToken }))).toBe(Code.Unauthenticated);
    }
  });
});

describe("signing keys", () => {
  const keyOptions = () => ({ db: t.db, rotateAfterMs: 3_600_000, verifyRetiredForMs: 3_600_000 });
  const tokenOptions = { issuer: "portico-auth", audience: "portico", ttlSeconds: 900, skewSeconds: 5 };

  it("rotate: the previous key keeps verifying, both are published, and a restart keeps them", async () => {
    const before = await signUp(t);
    const oldKid = decodeProtectedHeader(before.tokens.accessToken).kid;
    const rotated = await t.auth.rotateSigningKey();
    expect(rotated.kid).not.toBe(oldKid);
    const after = await t.client.refresh({ refreshToken: before.tokens.refreshToken });
    expect(decodeProtectedHeader(after.tokens!.accessToken).kid).toBe(rotated.kid);
    const kids = (JSON.parse((await t.gateway.getJwks({})).jwksJson) as { keys: JWK[] }).keys.map((k) => k.kid);
    expect(kids).toEqual(expect.arrayContaining([oldKid, rotated.kid]));

    await t.restart();
    expect(await codeOf(t.gateway.authenticate({ accessToken: before.tokens.accessToken }))).toBe("ok");
    expect(await codeOf(t.gateway.authenticate({ accessToken: after.tokens!.accessToken }))).toBe("ok");
    const fresh = await signUp(t);
    expect(decodeProtectedHeader(fresh.tokens.accessToken).kid).toBe(rotated.kid);
  });

  it("a key another replica made since the last read is found by reading the keys again", async () => {
    const [one, two] = [await createSigningKeys(keyOptions()), await createSigningKeys(keyOptions())];
    const issuer = createAccessTokens({ keys: one, ...tokenOptions });
    const verifier = createAccessTokens({ keys: two, ...tokenOptions });
    await one.rotate();
    const { token } = await issuer.issue({
      userId: crypto.randomUUID(),
      sessionId: crypto.randomUUID(),
      tier: "free",
      roles: [],
    });
    expect(two.find(decodeProtectedHeader(token).kid as string)).toBeUndefined();
    expect((await verifier.verify(token)).tier).toBe("free");
  });

  it("a token this process issued is checked without verifying its signature again, and answers what verifying it answers", async () => {
    const keys = await createSigningKeys(keyOptions());
    // The issuer's keys hand out a wrong public key: a signature it checked would not verify.
    const { publicKey: wrongKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const wrong = {
      ...keys,
      find: (kid: string) => {
        const key = keys.find(kid);
        return key && { ...key, publicKey: wrongKey };
      },
    };
    const issuer = createAccessTokens({ keys: wrong, ...tokenOptions });
    // Another replica: it has never seen the token, so it checks the signature.
    const replica = createAccessTokens({ keys: await createSigningKeys(keyOptions()), ...tokenOptions });
    const subject = { userId: crypto.randomUUID(), sessionId: crypto.randomUUID(), tier: "pro", roles: ["auth.admin", "ops"] };
    const { token, expiresAtMs } = await issuer.issue(subject);

    const remembered = await issuer.verify(token);
    const verified = await replica.verify(token);
    expect(remembered).toEqual(verified);
    expect(remembered).toMatchObject({ ...subject, expiresAtMs });

    // Only those exact bytes: the same claims under another signature are checked, and refused.
    const error = await issuer.verify(withFlippedSignature(token)).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: Code.Unauthenticated, rawMessage: "access token has an invalid signature" });
  });

  it("a remembered token is refused once its key is deleted from signing_keys and the keys are read again", async () => {
    const keys = await createSigningKeys(keyOptions());
    // A key of this test's own: the keys other tests sign with stay.
    const { kid } = await keys.rotate();
    const tokens = createAccessTokens({ keys, ...tokenOptions });
    const replica = createAccessTokens({ keys: await createSigningKeys(keyOptions()), ...tokenOptions });
    const subject = { userId: crypto.randomUUID(), sessionId: crypto.randomUUID(), tier: "free", roles: [] };
    // One token remembered when issued, one when its signature was first checked.
    const issued = (await tokens.issue(subject)).token;
    const verified = (await replica.issue(subject)).token;
    for (const token of [issued, verified]) {
      expect(decodeProtectedHeader(token).kid).toBe(kid);
      expect((await tokens.verify(token)).userId).toBe(subject.userId);
    }

    await t.db.query("delete from signing_keys where kid = $1", [kid]);
    await keys.reload();
    for (const token of [issued, verified]) {
      const error = await tokens.verify(token).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: Code.Unauthenticated, rawMessage: "access token is signed with an unknown key" });
    }
  });
});
