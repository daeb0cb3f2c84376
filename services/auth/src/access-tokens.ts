import { randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { decodeProtectedHeader, errors, type JWTPayload, jwtVerify, SignJWT } from "jose";
import { ACCESS_TOKEN_ALG, type SigningKeys } from "./signing-keys.js";

/** What a verified access token says. */
export interface AccessClaims {
  userId: string;
  sessionId: string;
  tier: string;
  roles: string[];
  /** Issue time in milliseconds (the `iat` claim has whole seconds only). */
  issuedAtMs: number;
  expiresAtMs: number;
}

export interface AccessTokensOptions {
  keys: SigningKeys;
  issuer: string;
  audience: string;
  ttlSeconds: number;
  /** Clock skew tolerated for `exp` and `nbf`, at most 30 s. */
  skewSeconds: number;
  /** Verified tokens remembered so a repeated token skips the signature check (default 50,000). */
  cacheSize?: number;
}

export interface AccessTokens {
  issue(subject: {
    userId: string;
    sessionId: string;
    tier: string;
    roles: string[];
  }): Promise<{ token: string; expiresAtMs: number }>;
  /** The claims of a valid token; `unauthenticated` for anything else. */
  verify(token: string): Promise<AccessClaims>;
}

// RFC 9068 media type: an access token cannot be confused with another JWT of the same issuer.
const TYP = "at+jwt";
// Header fields that would make a verifier fetch or trust a key named by the token itself.
const KEY_REFERENCE_HEADERS = ["jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256"];
const MAX_TOKEN_LENGTH = 4096;
const KEY_RELOAD_INTERVAL_MS = 5_000;

function unauthenticated(reason: string): ConnectError {
  return new ConnectError(`access token ${reason}`, Code.Unauthenticated);
}

function describe(error: unknown): string {
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

export function createAccessTokens(options: AccessTokensOptions): AccessTokens {
  const { keys, issuer, audience, ttlSeconds, skewSeconds } = options;
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 10 || ttlSeconds > 3600) {
    throw new Error(`access tokens: ttlSeconds ${ttlSeconds} is not valid; expected a whole number from 10 to 3600`);
  }
  if (!(skewSeconds >= 0 && skewSeconds <= 30)) {
    throw new Error(`access tokens: skewSeconds ${skewSeconds} is not valid; expected 0 to 30`);
  }
  const cacheSize = options.cacheSize ?? 50_000;
  if (!Number.isInteger(cacheSize) || cacheSize < 0) {
    throw new Error(`access tokens: cacheSize ${cacheSize} is not valid; expected a whole number ≥ 0`);
  }
  const cache = new Map<string, AccessClaims>();
  let lastReload = 0;

  async function keyFor(kid: unknown) {
    if (typeof kid !== "string" || kid === "") throw unauthenticated("has no key id");
    let key = keys.find(kid);
    // A key made by another replica since the last reload; reload at most every few seconds, as
    // unknown key ids are the attacker's choice.
    if (!key && Date.now() - lastReload > KEY_RELOAD_INTERVAL_MS) {
      lastReload = Date.now();
      await keys.reload();
      key = keys.find(kid);
    }
    if (!key) throw unauthenticated("is signed with an unknown key");
    return key.publicKey;
  }

  async function verifySignature(token: string): Promise<AccessClaims> {
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw unauthenticated("is malformed");
    }
    if (header.alg !== ACCESS_TOKEN_ALG) throw unauthenticated("is signed with an algorithm that is not accepted");
    if (KEY_REFERENCE_HEADERS.some((name) => name in header)) throw unauthenticated("names its own key, which is never trusted");
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, (h) => keyFor(h.kid), {
        algorithms: [ACCESS_TOKEN_ALG],
        issuer,
        audience,
        typ: TYP,
        clockTolerance: skewSeconds,
        requiredClaims: ["sub", "exp", "nbf", "iat", "jti", "sid"],
      }));
    } catch (error) {
      throw unauthenticated(describe(error));
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

  return {
    async issue(subject) {
      const key = keys.current();
      const nowMs = Date.now();
      const now = Math.floor(nowMs / 1000);
      const exp = now + ttlSeconds;
      const token = await new SignJWT({ sid: subject.sessionId, tier: subject.tier, roles: subject.roles, iat_ms: nowMs })
        .setProtectedHeader({ alg: ACCESS_TOKEN_ALG, kid: key.kid, typ: TYP })
        .setIssuer(issuer)
        .setAudience(audience)
        .setSubject(subject.userId)
        .setJti(randomUUID())
        .setIssuedAt(now)
        .setNotBefore(now)
        .setExpirationTime(exp)
        .sign(key.privateKey);
      return { token, expiresAtMs: exp * 1000 };
    },
    async verify(token) {
      if (token === "") throw unauthenticated("is missing");
      if (token.length > MAX_TOKEN_LENGTH) throw unauthenticated("is too long");
      const hit = cache.get(token);
      if (hit) {
        if (hit.expiresAtMs + skewSeconds * 1000 > Date.now()) return hit;
        cache.delete(token);
        throw unauthenticated("has expired");
      }
      const claims = await verifySignature(token);
      if (cacheSize === 0) return claims;
      if (cache.size >= cacheSize) {
        // Drop the oldest entry (Map keeps insertion order).
        const oldest = cache.keys().next().value;
        if (oldest !== undefined) cache.delete(oldest);
      }
      cache.set(token, claims);
      return claims;
    },
  };
}
