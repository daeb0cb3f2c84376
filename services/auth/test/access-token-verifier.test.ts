import { generateKeyPairSync, type KeyObject, randomUUID, sign } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import fc from "fast-check";
import { decodeProtectedHeader, errors, exportJWK, type JWTPayload, jwtVerify, SignJWT } from "jose";
import { describe, expect, it, vi } from "vitest";
import { createAccessTokenVerifier } from "../src/access-token-verifier.js";
import type { AccessClaims } from "../src/access-tokens.js";

// The verifier against jose's jwtVerify with the options the auth service used before it (the
// reference below is that code): the same answer for valid, expired, tampered, wrong-alg,
// wrong-typ and malformed tokens, and for arbitrary and mutated ones (seeded property).

const ISSUER = "portico-auth";
const AUDIENCE = "portico";
const SKEW = 5;
const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
const other = generateKeyPairSync("ec", { namedCurve: "P-256" });
const kid = "key-1";
const keyFor = (id: string): KeyObject => {
  if (id === kid) return publicKey;
  throw new ConnectError("access token is signed with an unknown key", Code.Unauthenticated);
};
const verifier = createAccessTokenVerifier({ keyFor, issuer: ISSUER, audience: AUDIENCE, skewSeconds: SKEW });

type Outcome = { ok: true; claims: AccessClaims } | { ok: false; code: Code; message: string };

async function outcome(run: () => Promise<AccessClaims>): Promise<Outcome> {
  try {
    return { ok: true, claims: await run() };
  } catch (error) {
    if (!(error instanceof ConnectError)) throw error;
    return { ok: false, code: error.code, message: error.rawMessage };
  }
}

// --- the reference: the auth service's verification with jose, as it was ---
const KEY_REFERENCE_HEADERS = ["jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256"];
const unauthenticated = (reason: string) => new ConnectError(`access token ${reason}`, Code.Unauthenticated);
function describeJoseError(error: unknown): string {
  if (error instanceof errors.JWTExpired) return "has expired";
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === "nbf") return "is not valid yet";
    return `has an unacceptable "${error.claim}" claim`;
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return "has an invalid signature";
  if (error instanceof errors.JOSEAlgNotAllowed) return "is signed with an algorithm that is not accepted";
  if (error instanceof ConnectError) return error.rawMessage.replace(/^access token /, "");
  return "is malformed";
}
async function joseVerify(token: string): Promise<AccessClaims> {
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(token);
  } catch {
    throw unauthenticated("is malformed");
  }
  if (header.alg !== "ES256") throw unauthenticated("is signed with an algorithm that is not accepted");
  if (KEY_REFERENCE_HEADERS.some((name) => name in header)) throw unauthenticated("names its own key, which is never trusted");
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(
      token,
      (h) => {
        if (typeof h.kid !== "string" || h.kid === "") throw unauthenticated("has no key id");
        return keyFor(h.kid);
      },
      {
        algorithms: ["ES256"],
        issuer: ISSUER,
        audience: AUDIENCE,
        typ: "at+jwt",
        clockTolerance: SKEW,
        requiredClaims: ["sub", "exp", "nbf", "iat", "jti", "sid"],
      },
    ));
  } catch (error) {
    throw unauthenticated(describeJoseError(error));
  }
  const { sub, sid, tier, roles, iat, exp } = payload as JWTPayload & { sid: unknown; tier: unknown; roles: unknown };
  const iatMs = (payload as { iat_ms?: unknown }).iat_ms;
  if (typeof sub !== "string" || typeof sid !== "string" || typeof tier !== "string" || !Array.isArray(roles)) {
    throw unauthenticated("is missing claims");
  }
  return {
    userId: sub,
    sessionId: sid,
    tier,
    roles: roles.map(String),
    issuedAtMs: typeof iatMs === "number" ? iatMs : (iat as number) * 1000,
    expiresAtMs: (exp as number) * 1000,
  };
}

// --- tokens ---
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
const now = () => Math.floor(Date.now() / 1000);

function claimsOf(changes: Record<string, unknown> = {}): Record<string, unknown> {
  const t = now();
  const claims: Record<string, unknown> = {
    iss: ISSUER,
    aud: AUDIENCE,
    sub: randomUUID(),
    sid: randomUUID(),
    tier: "free",
    roles: ["user"],
    jti: randomUUID(),
    iat: t,
    nbf: t,
    exp: t + 900,
    iat_ms: Date.now(),
    ...changes,
  };
  for (const [name, value] of Object.entries(claims)) if (value === undefined) delete claims[name];
  return claims;
}

/** A token signed with the verifier's key (or `key`), the header and claims exactly as given. */
async function token(
  changes: Record<string, unknown> = {},
  header: Record<string, unknown> = {},
  key: KeyObject = privateKey,
): Promise<string> {
  const protectedHeader = { alg: "ES256", kid, typ: "at+jwt", ...header };
  for (const [name, value] of Object.entries(protectedHeader))
    if (value === undefined) delete (protectedHeader as Record<string, unknown>)[name];
  return new SignJWT(claimsOf(changes)).setProtectedHeader(protectedHeader as { alg: string }).sign(key);
}

/** Both verifiers on `text`: each outcome, and neither throws anything but ConnectError. */
async function both(text: string) {
  return { ours: await outcome(async () => (await verifier(text)).claims), jose: await outcome(() => joseVerify(text)) };
}

async function expectSame(text: string) {
  const { ours, jose } = await both(text);
  expect(ours).toEqual(jose);
  return ours;
}

async function expectRefused(text: string, message: string) {
  const ours = await expectSame(text);
  expect(ours).toEqual({ ok: false, code: Code.Unauthenticated, message: `access token ${message}` });
}

describe("access token verifier (node:crypto) against jose", () => {
  it("accepts a valid token with the claims jose reads", async () => {
    const claims = claimsOf({ roles: ["user", "auth.admin"] });
    const text = await new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid, typ: "at+jwt" }).sign(privateKey);
    const ours = await expectSame(text);
    expect(ours).toEqual({
      ok: true,
      claims: {
        userId: claims.sub,
        sessionId: claims.sid,
        tier: "free",
        roles: ["user", "auth.admin"],
        issuedAtMs: claims.iat_ms,
        expiresAtMs: (claims.exp as number) * 1000,
      },
    });
  });

  it("accepts what jose accepts: aud in a list, typ in other spellings, no iat_ms, exp and nbf within the skew", async () => {
    for (const text of [
      await token({ aud: ["other", AUDIENCE] }),
      await token({}, { typ: "AT+JWT" }),
      await token({}, { typ: "application/at+jwt" }),
      await token({ iat_ms: undefined }),
      await token({ exp: now() - SKEW + 2, nbf: now() + SKEW - 2 }),
    ]) {
      expect((await expectSame(text)).ok).toBe(true);
    }
  });

  it("refuses an expired token and one not valid yet", async () => {
    await expectRefused(await token({ exp: now() - SKEW - 1 }), "has expired");
    await expectRefused(await token({ exp: now() - SKEW }), "has expired");
    await expectRefused(await token({ nbf: now() + SKEW + 2 }), "is not valid yet");
  });

  it("refuses a tampered payload, header or signature, and another key's signature", async () => {
    const text = await token();
    const [h, p, s] = text.split(".") as [string, string, string];
    const promoted = b64({ ...JSON.parse(Buffer.from(p, "base64url").toString()), roles: ["auth.admin"] });
    await expectRefused(`${h}.${promoted}.${s}`, "has an invalid signature");
    const flipped = `${s.slice(0, 10)}${s[10] === "A" ? "B" : "A"}${s.slice(11)}`;
    await expectRefused(`${h}.${p}.${flipped}`, "has an invalid signature");
    await expectRefused(`${b64({ alg: "ES256", kid, typ: "at+jwt", x: 1 })}.${p}.${s}`, "has an invalid signature");
    await expectRefused(`${h}.${p}.${s.slice(0, 40)}`, "has an invalid signature");
    await expectRefused(`${h}.${p}.`, "has an invalid signature");
    await expectRefused(await token({}, {}, other.privateKey), "has an invalid signature");
  });

  it('refuses alg "none", HS256 signed with the public key, and other algorithms', async () => {
    const claims = claimsOf();
    await expectRefused(
      `${b64({ alg: "none", kid, typ: "at+jwt" })}.${b64(claims)}.`,
      "is signed with an algorithm that is not accepted",
    );
    const jwk = await exportJWK(publicKey);
    for (const secret of [JSON.stringify(jwk), publicKey.export({ format: "pem", type: "spki" }).toString(), jwk.x as string]) {
      const hs = await new SignJWT(claims)
        .setProtectedHeader({ alg: "HS256", kid, typ: "at+jwt" })
        .sign(new TextEncoder().encode(secret));
      await expectRefused(hs, "is signed with an algorithm that is not accepted");
    }
    const es384 = generateKeyPairSync("ec", { namedCurve: "P-384" }).privateKey;
    await expectRefused(await token({}, { alg: "ES384" }, es384), "is signed with an algorithm that is not accepted");
    await expectRefused(`${b64({ kid, typ: "at+jwt" })}.${b64(claims)}.AAAA`, "is signed with an algorithm that is not accepted");
    await expectRefused(
      `${b64({ alg: "es256", kid, typ: "at+jwt" })}.${b64(claims)}.AAAA`,
      "is signed with an algorithm that is not accepted",
    );
  });

  it("refuses the wrong typ, a key the token names itself, and a missing or unknown kid", async () => {
    await expectRefused(await token({}, { typ: "JWT" }), 'has an unacceptable "typ" claim');
    await expectRefused(await token({}, { typ: undefined }), 'has an unacceptable "typ" claim');
    await expectRefused(await token({}, { typ: "application/jwt" }), 'has an unacceptable "typ" claim');
    const jwk = await exportJWK(publicKey);
    await expectRefused(await token({}, { jwk }), "names its own key, which is never trusted");
    await expectRefused(
      await token({}, { jku: "https://attacker.example/jwks.json" }),
      "names its own key, which is never trusted",
    );
    await expectRefused(await token({}, { x5c: [] }), "names its own key, which is never trusted");
    await expectRefused(await token({}, { kid: undefined }), "has no key id");
    await expectRefused(await token({}, { kid: "" }), "has no key id");
    await expectRefused(await token({}, { kid: 7 }), "has no key id");
    await expectRefused(await token({}, { kid: "key-2" }), "is signed with an unknown key");
  });

  it("checks a header once per text, but asks for its key on every token: a key let go is refused at once", async () => {
    const keys = new Map([[kid, publicKey]]);
    const asked: string[] = [];
    const rotating = createAccessTokenVerifier({
      keyFor: (id) => {
        asked.push(id);
        const key = keys.get(id);
        if (!key) throw new ConnectError("access token is signed with an unknown key", Code.Unauthenticated);
        return key;
      },
      issuer: ISSUER,
      audience: AUDIENCE,
      skewSeconds: SKEW,
    });
    const first = await token();
    const second = await token();
    expect(first.split(".")[0]).toBe(second.split(".")[0]);
    await expect(rotating(first)).resolves.toMatchObject({ claims: { tier: "free" }, kid });
    keys.delete(kid);
    await expect(rotating(second)).rejects.toThrow("access token is signed with an unknown key");
    keys.set(kid, other.publicKey);
    await expect(rotating(second)).rejects.toThrow("access token has an invalid signature");
    expect(asked).toEqual([kid, kid, kid]);
    // Many distinct headers (the caller's choice) neither grow without bound nor change an answer.
    keys.set(kid, publicKey);
    for (let i = 0; i < 200; i++) {
      const text = await token({}, { extra: i, typ: i % 2 === 0 ? "at+jwt" : "JWT" });
      const result = await outcome(async () => (await rotating(text)).claims);
      if (i % 2 === 0) expect(result.ok).toBe(true);
      else
        expect(result).toEqual({
          ok: false,
          code: Code.Unauthenticated,
          message: 'access token has an unacceptable "typ" claim',
        });
    }
    await expect(rotating(first)).resolves.toMatchObject({ claims: { tier: "free" }, kid });
  });

  it("refuses the wrong issuer or audience, missing claims and claims of the wrong type", async () => {
    await expectRefused(await token({ iss: "someone-else" }), 'has an unacceptable "iss" claim');
    await expectRefused(await token({ aud: "other" }), 'has an unacceptable "aud" claim');
    await expectRefused(await token({ aud: ["other"] }), 'has an unacceptable "aud" claim');
    for (const claim of ["iss", "aud", "sub", "exp", "iat", "jti", "sid"]) {
      await expectRefused(await token({ [claim]: undefined }), `has an unacceptable "${claim}" claim`);
    }
    await expectRefused(await token({ nbf: undefined }), "is not valid yet");
    await expectRefused(await token({ exp: String(now() + 900) }), 'has an unacceptable "exp" claim');
    await expectRefused(await token({ iat: null }), 'has an unacceptable "iat" claim');
    await expectRefused(await token({ sub: 42 }), "is missing claims");
    await expectRefused(await token({ tier: undefined }), "is missing claims");
    await expectRefused(await token({ roles: "admin" }), "is missing claims");
  });

  it("refuses malformed tokens", async () => {
    const text = await token();
    const [h, p, s] = text.split(".") as [string, string, string];
    for (const bad of ["", "abc", "a.b", `${h}.${p}`, `${h}.${p}.${s}.x`, `${h}.${p}.${s}.x.y`, `.${p}.${s}`, `e30.${p}.${s}`]) {
      expect((await expectSame(bad)).ok).toBe(false);
    }
    await expectRefused(`${b64([1, 2])}.${p}.${s}`, "is malformed");
    await expectRefused(`${Buffer.from("not json").toString("base64url")}.${p}.${s}`, "is malformed");
    await expectRefused(`${h}.${p}.${s}!`, "is malformed");
    // A correctly signed payload that is not a JSON object.
    const input = `${h}.${Buffer.from("[1]").toString("base64url")}`;
    const sig = sign("sha256", Buffer.from(input), { key: privateKey, dsaEncoding: "ieee-p1363" }).toString("base64url");
    await expectRefused(`${input}.${sig}`, "is malformed");
  });

  it("is stricter than jose only where this issuer's tokens never go: crit/b64 headers, non-canonical base64url", async () => {
    const withCrit = await token({}, { crit: ["b64"], b64: true });
    const { ours, jose } = await both(withCrit);
    expect(jose.ok).toBe(true);
    expect(ours).toEqual({ ok: false, code: Code.Unauthenticated, message: "access token is malformed" });
    const text = await token();
    const [h, p, s] = text.split(".") as [string, string, string];
    // The signature's last character carries 4 unused bits: jose ignores them, this verifier does not.
    const last = s.at(-1) as string;
    const twin = `${s.slice(0, -1)}${String.fromCharCode(last.charCodeAt(0) + (last === "A" ? 1 : -1))}`;
    const padded = both(`${h}.${p}.${s}==`);
    expect((await both(`${h}.${p}.${twin}`)).ours.ok).toBe(false);
    expect((await padded).ours.ok).toBe(false);
  });
});

// --- the property: arbitrary and mutated tokens ---
const seed = Number(process.env.FUZZ_SEED ?? 20_261_204);
const base64urlChar = fc.constantFrom(..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".split(""));

/** Every segment canonical base64url (what this verifier insists on and jose does not). */
function canonical(text: string): boolean {
  return text
    .split(".")
    .every((segment) => /^[A-Za-z0-9_-]*$/.test(segment) && Buffer.from(segment, "base64url").toString("base64url") === segment);
}

/** Mostly `valid` (so that most generated tokens get past the early checks), sometimes one of `others` or absent. */
const field = <T>(valid: fc.Arbitrary<T>, ...others: unknown[]) =>
  fc.oneof({ weight: 15, arbitrary: valid }, { weight: 1, arbitrary: fc.constantFrom(undefined, ...others) });
/** A numeric date `offset` seconds from now, give or take 20 (resolved when signing), or not a usable one. */
const numeric = (offset: number) =>
  field(
    fc.integer({ min: -20, max: 20 }).map((d) => ({ d: offset + d })),
    "1",
    null,
    1.5e12,
  );
const headerArb = fc.record({
  alg: field(fc.constant("ES256"), "none", "HS256", "RS256", "es256", ""),
  kid: field(fc.constant(kid), "key-2", "", 7),
  typ: field(fc.constantFrom("at+jwt", "AT+JWT", "application/at+jwt"), "jwt", "application/jwt", "at+jwt; x"),
  jwk: fc.constantFrom(...Array(9).fill(undefined), { kty: "EC" }),
  x5u: fc.constantFrom(...Array(9).fill(undefined), "https://x.example"),
  cty: fc.option(fc.string({ maxLength: 8 }), { nil: undefined }),
});
const claimsArb = fc.record({
  iss: field(fc.constant(ISSUER), "other", 1),
  aud: field(fc.constantFrom(AUDIENCE, [AUDIENCE], ["x", AUDIENCE]), ["x"], "x", null),
  sub: field(fc.uuid(), 42),
  sid: field(fc.uuid(), null),
  tier: field(fc.constantFrom("free", "pro"), 3),
  roles: field(fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }), "admin"),
  jti: field(fc.uuid(), 42),
  iat: numeric(0),
  nbf: numeric(0),
  exp: fc.oneof(numeric(900), numeric(0)),
  iat_ms: fc.option(fc.oneof(fc.integer(), fc.string()), { nil: undefined }),
});
function timeValue(value: unknown): unknown {
  if (typeof value === "object" && value !== null && "d" in value) return now() + (value as { d: number }).d;
  return value;
}
const defined = (record: Record<string, unknown>) =>
  Object.fromEntries(
    Object.entries(record)
      .filter(([, value]) => value !== undefined)
      .map(([name, value]) => [name, timeValue(value)]),
  );

const mutation = fc.oneof(
  fc.record({
    kind: fc.constant("replace" as const),
    at: fc.nat(),
    char: fc.oneof(base64urlChar, fc.constantFrom(".", "=", " ", "+", "/", "é")),
  }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), char: fc.oneof(base64urlChar, fc.constantFrom(".", "=")) }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
);
function mutate(text: string, m: { kind: string; at: number; char?: string }): string {
  const at = text.length === 0 ? 0 : m.at % text.length;
  if (m.kind === "replace") return text.slice(0, at) + m.char + text.slice(at + 1);
  if (m.kind === "delete") return text.slice(0, at) + text.slice(at + 1);
  if (m.kind === "insert") return text.slice(0, at) + m.char + text.slice(at);
  return text.slice(0, at);
}

describe("access token verifier, property", () => {
  it("agrees with jose on signed tokens of arbitrary headers and claims, and on mutations of them", async () => {
    let accepted = 0;
    // One clock for the drawn times and both verifiers: times are drawn around now, and a second
    // that ended between ours and jose's reading of the clock made them disagree on `exp`.
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    try {
      await fc.assert(
        fc.asyncProperty(
          headerArb,
          claimsArb,
          fc.oneof(fc.constant([]), fc.array(mutation, { minLength: 1, maxLength: 3 })),
          async (header, claims, mutations) => {
            const input = `${b64(defined(header))}.${b64(defined(claims))}`;
            const signed = `${input}.${sign("sha256", Buffer.from(input), { key: privateKey, dsaEncoding: "ieee-p1363" }).toString("base64url")}`;
            let text = signed;
            for (const m of mutations) text = mutate(text, m);
            const { ours, jose } = await both(text);
            if (!ours.ok) expect(ours.code).toBe(Code.Unauthenticated);
            if (!jose.ok) expect(jose.code).toBe(Code.Unauthenticated);
            if (ours.ok) expect(jose).toEqual(ours);
            else if (jose.ok) expect(canonical(text)).toBe(false);
            // Well-formed tokens (no mutation): the same words too.
            if (mutations.length === 0) expect(ours).toEqual(jose);
            accepted += ours.ok ? 1 : 0;
          },
        ),
        { seed, numRuns: Number(process.env.FUZZ_RUNS ?? 400) },
      );
    } finally {
      vi.useRealTimers();
    }
    // The generator reaches the end of the checks, not only the first refusals.
    expect(accepted).toBeGreaterThan(20);
  });

  it("refuses arbitrary strings with unauthenticated, as jose does", async () => {
    const segment = fc.string({ unit: base64urlChar, maxLength: 120 });
    const tokenLike = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.array(segment, { minLength: 1, maxLength: 5 }).map((parts) => parts.join(".")),
      fc.tuple(fc.jsonValue(), fc.jsonValue(), segment).map(([h, p, s]) => `${b64(h)}.${b64(p)}.${s}`),
      fc
        .tuple(fc.dictionary(fc.constantFrom("alg", "kid", "typ", "crit", "b64"), fc.jsonValue()), segment)
        .map(([h, s]) => `${b64({ alg: "ES256", kid, typ: "at+jwt", ...h })}.${b64(claimsOf())}.${s}`),
    );
    await fc.assert(
      fc.asyncProperty(tokenLike, async (text) => {
        const { ours, jose } = await both(text);
        expect(ours).toMatchObject({ ok: false, code: Code.Unauthenticated });
        expect(jose).toMatchObject({ ok: false, code: Code.Unauthenticated });
      }),
      { seed, numRuns: Number(process.env.FUZZ_RUNS ?? 1000) },
    );
  });
});
