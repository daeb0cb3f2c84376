import { sign } from "node:crypto";
import { ConfigError } from "./config-error.js";
import { type Identity, tokenTypes } from "./identity.js";
import { checkServiceName } from "./service-directory.js";
import type { ServiceKey } from "./service-key.js";

export interface TokenSignerOptions {
  /** The service's own key; its `service` is the `iss` of everything signed. */
  key: ServiceKey;
  /** Lifetime of a token in seconds, 5 to 60 (default 60). */
  ttlSeconds?: number;
}

export interface SignedToken {
  token: string;
  /** `exp`, in seconds since the epoch. */
  expiresAt: number;
}

export interface TokenSigner {
  readonly service: string;
  readonly ttlSeconds: number;
  /**
   * A user assertion for `audience` (`typ` portico-user+jwt). Only assertions signed by the
   * gateway's key are accepted anywhere; the caller caches it (the gateway does, per identity and audience).
   */
  assertion(identity: Identity, audience: string, nowSeconds?: number): SignedToken;
  /**
   * This service's token for a call to `audience` (`typ` portico-service+jwt), with the services
   * the user came through before this one (`act`); reused for the first half of its life.
   */
  serviceToken(audience: string, act?: readonly string[]): string;
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

/**
 * Signs compact JWS tokens with the service's key. Signing is synchronous (node:crypto) so the
 * gateway can sign on its hot path without a promise; verification (call-verifier.ts) is jose's.
 */
export function createTokenSigner(options: TokenSignerOptions): TokenSigner {
  const { key } = options;
  const ttl = options.ttlSeconds ?? 60;
  if (!Number.isInteger(ttl) || ttl < 5 || ttl > 60) {
    throw new ConfigError(`createTokenSigner: ttlSeconds ${ttl} is not valid; expected a whole number from 5 to 60`);
  }
  const headers = {
    user: b64({ alg: key.alg, kid: key.kid, typ: tokenTypes.user }),
    service: b64({ alg: key.alg, kid: key.kid, typ: tokenTypes.service }),
  };
  const signJws = (header: string, payload: Record<string, unknown>) => {
    const input = `${header}.${b64(payload)}`;
    const signature =
      key.alg === "EdDSA"
        ? sign(null, Buffer.from(input), key.privateKey)
        : sign("sha256", Buffer.from(input), { key: key.privateKey, dsaEncoding: "ieee-p1363" });
    return `${input}.${signature.toString("base64url")}`;
  };
  const serviceTokens = new Map<string, { token: string; renewAt: number }>();
  return {
    service: key.service,
    ttlSeconds: ttl,
    assertion(identity, audience, nowSeconds = Math.floor(Date.now() / 1000)) {
      const expiresAt = nowSeconds + ttl;
      const token = signJws(headers.user, {
        iss: key.service,
        aud: audience,
        sub: identity.userId,
        tier: identity.tier,
        roles: identity.roles,
        sid: identity.sessionId,
        cip: identity.clientAddress,
        iat: nowSeconds,
        exp: expiresAt,
      });
      return { token, expiresAt };
    },
    serviceToken(audience, act = []) {
      const cacheKey = act.length === 0 ? audience : `${audience}|${act.join(",")}`;
      const now = Date.now();
      const cached = serviceTokens.get(cacheKey);
      if (cached !== undefined && cached.renewAt > now) return cached.token;
      checkServiceName(audience, "serviceToken audience");
      const iat = Math.floor(now / 1000);
      const payload: Record<string, unknown> = { iss: key.service, sub: key.service, aud: audience, iat, exp: iat + ttl };
      if (act.length > 0) payload.act = [...act];
      const token = signJws(headers.service, payload);
      if (serviceTokens.size >= 1000) serviceTokens.clear();
      serviceTokens.set(cacheKey, { token, renewAt: now + (ttl * 1000) / 2 });
      return token;
    },
  };
}
