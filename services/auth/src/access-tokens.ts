import { type KeyObject, randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { SignJWT } from "jose/jwt/sign";
import { createAccessTokenVerifier } from "./access-token-verifier.js";
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
  /**
   * Tokens remembered with their claims so that checking one again skips the signature check
   * (default 50,000): each token this process issues, and each it has verified.
   */
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
const MAX_TOKEN_LENGTH = 4096;
const KEY_RELOAD_INTERVAL_MS = 5_000;

function unauthenticated(reason: string): ConnectError {
  return new ConnectError(`access token ${reason}`, Code.Unauthenticated);
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
  // Each remembered token with the kid of the key that signed it: a hit counts only while that key
  // is still loaded, so a key withdrawn (its row deleted: dropped within a revocation poll) or retired
  // past its window (dropped at a reload) stops its remembered tokens, as it stops the ones never seen.
  const cache = new Map<string, { claims: AccessClaims; kid: string }>();
  const remember = (token: string, claims: AccessClaims, kid: string) => {
    if (cacheSize === 0) return;
    if (cache.size >= cacheSize) {
      // Drop the oldest entry (Map keeps insertion order).
      const oldest = cache.keys().next().value;
      if (oldest !== undefined) cache.delete(oldest);
    }
    cache.set(token, { claims, kid });
  };
  let lastReload = 0;

  // The key of a token's kid. A key made by another replica since the last reload is found by
  // reloading, at most every few seconds, as unknown key ids are the attacker's choice.
  const keyFor = (kid: string): KeyObject | Promise<KeyObject> => {
    const key = keys.find(kid);
    if (key) return key.publicKey;
    if (Date.now() - lastReload <= KEY_RELOAD_INTERVAL_MS) throw unauthenticated("is signed with an unknown key");
    lastReload = Date.now();
    return keys.reload().then(
      () => {
        const reloaded = keys.find(kid);
        if (!reloaded) throw unauthenticated("is signed with an unknown key");
        return reloaded.publicKey;
      },
      (error: unknown) => {
        throw new ConnectError("cannot read the signing keys", Code.Unavailable, undefined, undefined, error);
      },
    );
  };
  // Issued with jose; verified with node:crypto directly (access-token-verifier.ts), the hot path of every cache miss.
  const verifySignature = createAccessTokenVerifier({ keyFor, issuer, audience, skewSeconds });

  return {
    async issue(subject) {
      const key = await keys.current();
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
      // A new token is usually checked moments later (the gateway's cache has never seen it). These
      // exact bytes were signed here, so their signature is valid by construction: its first check
      // is a lookup, not an ES256 verification (a hit still checks expiry; the caller, revocation).
      // What verifying these bytes would answer, field for field (access-token-verifier.ts).
      remember(
        token,
        {
          userId: subject.userId,
          sessionId: subject.sessionId,
          tier: subject.tier,
          roles: subject.roles.map(String),
          issuedAtMs: nowMs,
          expiresAtMs: exp * 1000,
        },
        key.kid,
      );
      return { token, expiresAtMs: exp * 1000 };
    },
    async verify(token) {
      if (token === "") throw unauthenticated("is missing");
      if (token.length > MAX_TOKEN_LENGTH) throw unauthenticated("is too long");
      const hit = cache.get(token);
      if (hit) {
        if (keys.find(hit.kid) === undefined) {
          // Its key is gone: checked again below, as any token of an unknown key.
          cache.delete(token);
        } else if (hit.claims.expiresAtMs + skewSeconds * 1000 > Date.now()) {
          return hit.claims;
        } else {
          cache.delete(token);
          throw unauthenticated("has expired");
        }
      }
      const { claims, kid } = await verifySignature(token);
      remember(token, claims, kid);
      return claims;
    },
  };
}
