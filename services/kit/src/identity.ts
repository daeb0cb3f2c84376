import { createHmac, timingSafeEqual } from "node:crypto";
import { Code, ConnectError, createContextKey, type HandlerContext } from "@connectrpc/connect";

/** The verified caller, as the gateway forwards it to backends. */
export interface Identity {
  userId: string;
  tier: string;
  roles: string[];
  sessionId: string;
}

/** Headers the gateway owns: every client-sent copy is removed and these are set from the identity. */
export const identityHeaders = {
  userId: "x-user-id",
  tier: "x-user-tier",
  roles: "x-user-roles",
  sessionId: "x-session-id",
  assertion: "x-portico-identity",
} as const;

/** Where handlers find the caller: `ctx.values.get(identityKey)`; undefined for anonymous calls. */
export const identityKey = createContextKey<Identity | undefined>(undefined, {
  description: "the caller verified from x-portico-identity",
});

export interface IdentityAssertionOptions {
  /** Shared HMAC secret, at least 32 bytes. */
  secret: string | Uint8Array;
  /** Lifetime of a signed assertion in seconds (default 60). */
  ttlSeconds?: number;
  /** Clock skew tolerated when verifying, in seconds (default 5). */
  skewSeconds?: number;
}

// The assertion is a compact JWS with HS256 pinned: the header is a constant, so anything else
// (alg none, another algorithm, extra header fields) fails the comparison before any crypto.
const HEADER = Buffer.from(JSON.stringify({ alg: "HS256", typ: "JWT" })).toString("base64url");
const ISSUER = "portico-gateway";
const MAX_CACHE = 10_000;

interface AssertionPayload {
  iss: string;
  sub: string;
  tier: string;
  roles: string[];
  sid: string;
  iat: number;
  exp: number;
}

function secretBytes(secret: string | Uint8Array): Buffer {
  const bytes = typeof secret === "string" ? Buffer.from(secret, "utf8") : Buffer.from(secret);
  if (bytes.length < 32) {
    throw new Error(`identity secret: ${bytes.length} bytes given, at least 32 are required`);
  }
  return bytes;
}

export interface IdentitySigner {
  /** A signed assertion of `identity`, valid for the configured ttl. */
  sign(identity: Identity, nowSeconds?: number): { assertion: string; expiresAt: number };
}

export function createIdentitySigner(options: IdentityAssertionOptions): IdentitySigner {
  const key = secretBytes(options.secret);
  const ttl = options.ttlSeconds ?? 60;
  return {
    sign(identity, nowSeconds = Math.floor(Date.now() / 1000)) {
      const payload: AssertionPayload = {
        iss: ISSUER,
        sub: identity.userId,
        tier: identity.tier,
        roles: identity.roles,
        sid: identity.sessionId,
        iat: nowSeconds,
        exp: nowSeconds + ttl,
      };
      const body = `${HEADER}.${Buffer.from(JSON.stringify(payload)).toString("base64url")}`;
      const mac = createHmac("sha256", key).update(body).digest("base64url");
      return { assertion: `${body}.${mac}`, expiresAt: payload.exp };
    },
  };
}

export interface IdentityVerifier {
  /** The identity in a valid, unexpired assertion; undefined for anything else. */
  verify(assertion: string | undefined): Identity | undefined;
}

export function createIdentityVerifier(options: IdentityAssertionOptions): IdentityVerifier {
  const key = secretBytes(options.secret);
  const skew = options.skewSeconds ?? 5;
  // Verified assertions are reused by the gateway for their whole life: remember them.
  const cache = new Map<string, { identity: Identity; exp: number }>();
  return {
    verify(assertion) {
      if (!assertion || assertion.length > 4096) return undefined;
      const now = Math.floor(Date.now() / 1000);
      const hit = cache.get(assertion);
      if (hit) {
        if (hit.exp + skew >= now) return hit.identity;
        cache.delete(assertion);
        return undefined;
      }
      const lastDot = assertion.lastIndexOf(".");
      const firstDot = assertion.indexOf(".");
      if (firstDot !== HEADER.length || lastDot <= firstDot) return undefined;
      if (assertion.slice(0, firstDot) !== HEADER) return undefined;
      const expected = createHmac("sha256", key).update(assertion.slice(0, lastDot)).digest();
      const given = Buffer.from(assertion.slice(lastDot + 1), "base64url");
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
      let payload: AssertionPayload;
      try {
        payload = JSON.parse(Buffer.from(assertion.slice(firstDot + 1, lastDot), "base64url").toString("utf8"));
      } catch {
        return undefined;
      }
      if (payload.iss !== ISSUER || typeof payload.sub !== "string" || payload.sub === "") return undefined;
      if (typeof payload.exp !== "number" || payload.exp + skew < now) return undefined;
      if (typeof payload.iat !== "number" || payload.iat - skew > now) return undefined;
      const identity: Identity = {
        userId: payload.sub,
        tier: String(payload.tier ?? ""),
        roles: Array.isArray(payload.roles) ? payload.roles.map(String) : [],
        sessionId: String(payload.sid ?? ""),
      };
      if (cache.size >= MAX_CACHE) cache.clear();
      cache.set(assertion, { identity, exp: payload.exp });
      return identity;
    },
  };
}

/** The caller of an authenticated handler; throws `unauthenticated` for anonymous calls. */
export function requireIdentity(ctx: Pick<HandlerContext, "values">): Identity {
  const identity = ctx.values.get(identityKey);
  if (!identity) throw new ConnectError("this method needs an authenticated caller", Code.Unauthenticated);
  return identity;
}
