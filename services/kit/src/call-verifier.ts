import { Code, ConnectError } from "@connectrpc/connect";
import type { JWTPayload } from "jose";
import { decodeProtectedHeader } from "jose/decode/protected_header";
import { jwtVerify } from "jose/jwt/verify";
import { ConfigError } from "./config-error.js";
import { type Caller, GATEWAY_SERVICE, type Identity, identityHeaders, tokenTypes } from "./identity.js";
import { createLruCache } from "./lru-cache.js";
import { checkServiceName } from "./service-directory.js";
import type { TrustBundle } from "./trust-bundle.js";

export interface CallVerifierOptions {
  /** This service's name: the `aud` every token sent to it must carry. */
  service: string;
  trust: TrustBundle;
  /** Verified tokens remembered for their life, by token string (default 10 000; 0 turns it off). */
  cacheSize?: number;
  /** Clock skew tolerated on `iat`/`exp` (default 5 s). */
  clockSkewSeconds?: number;
}

export interface CallVerifier {
  readonly service: string;
  /**
   * The caller of a request from its `x-portico-identity` and `x-portico-service` headers;
   * anonymous when neither is present. Throws `unauthenticated` for anything presented that is not valid.
   */
  verify(header: { get(name: string): string | null }): Promise<Caller>;
}

/** The longest life a token may claim (exp - iat), in seconds. */
const MAX_LIFETIME = 60;
const MAX_TOKEN_LENGTH = 8192;
const MAX_CHAIN = 8;

interface Verified {
  typ: string;
  /** The service owning the key that signed it (= its `iss`). */
  signer: string;
  aud: string;
  /** For a user assertion: the user. */
  user?: Identity;
  /** For a service token: the services before its issuer. */
  act: readonly string[];
}

const refuse = (message: string) => new ConnectError(message, Code.Unauthenticated);

function userOf(payload: JWTPayload): Identity {
  if (typeof payload.sub !== "string" || payload.sub === "") throw refuse("user assertion has no subject");
  const roles = (payload as { roles?: unknown }).roles;
  return {
    userId: payload.sub,
    tier: String((payload as { tier?: unknown }).tier ?? ""),
    roles: Array.isArray(roles) ? roles.map(String) : [],
    sessionId: String((payload as { sid?: unknown }).sid ?? ""),
    clientAddress: String((payload as { cip?: unknown }).cip ?? ""),
  };
}

function actOf(payload: JWTPayload): readonly string[] {
  const act = (payload as { act?: unknown }).act;
  if (act === undefined) return [];
  if (!Array.isArray(act) || act.length > MAX_CHAIN || !act.every((s) => typeof s === "string" && /^[a-z][a-z0-9-]*$/.test(s))) {
    throw refuse("service token has a malformed act chain");
  }
  return act as string[];
}

/**
 * Verifies the gateway's user assertions and services' tokens against the trust bundle (public
 * keys only), with the algorithm pinned to the key's, `typ` pinned to the kind of token, the key's
 * owner required to be the `iss`, a life of at most 60 s, and `aud` bound to this service (for a
 * delegated user: to the service that passes it on). Verified tokens are remembered for their life.
 */
export function createCallVerifier(options: CallVerifierOptions): CallVerifier {
  const self = checkServiceName(options.service, "createCallVerifier");
  const skew = options.clockSkewSeconds ?? 5;
  if (!Number.isInteger(skew) || skew < 0 || skew > 30) {
    throw new ConfigError(`createCallVerifier: clockSkewSeconds ${skew} is not valid; expected a whole number from 0 to 30`);
  }
  const cache = createLruCache<Verified>(options.cacheSize ?? 10_000);

  const verifyToken = async (token: string, typ: string, what: string): Promise<Verified> => {
    const hit = cache.get(token);
    if (hit !== undefined) {
      if (hit.typ !== typ) throw refuse(`${what} is not a ${typ} token`);
      return hit;
    }
    if (token.length > MAX_TOKEN_LENGTH) throw refuse(`${what} is too long`);
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw refuse(`${what} is malformed`);
    }
    if (header.typ !== typ) throw refuse(`${what} is not a ${typ} token`);
    const key = typeof header.kid === "string" ? await options.trust.key(header.kid) : undefined;
    if (key === undefined)
      throw refuse(`${what} is signed by a key the trust bundle does not hold (kid ${JSON.stringify(header.kid)})`);
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key.key, {
        algorithms: [key.alg],
        typ,
        clockTolerance: skew,
        requiredClaims: ["iss", "aud", "iat", "exp"],
      }));
    } catch (error) {
      throw refuse(`${what} is not valid: ${(error as Error).message}`);
    }
    if (payload.iss !== key.service) throw refuse(`${what} claims issuer ${payload.iss} but is signed by ${key.service}'s key`);
    const iat = payload.iat as number;
    const exp = payload.exp as number;
    if (exp - iat > MAX_LIFETIME) throw refuse(`${what} claims a life of ${exp - iat} s; at most ${MAX_LIFETIME} s is accepted`);
    if (iat > Date.now() / 1000 + skew) throw refuse(`${what} is issued in the future`);
    if (typeof payload.aud !== "string") throw refuse(`${what} must name exactly one audience`);
    const verified: Verified = {
      typ,
      signer: key.service,
      aud: payload.aud,
      user: typ === tokenTypes.user ? userOf(payload) : undefined,
      act: typ === tokenTypes.service ? actOf(payload) : [],
    };
    cache.set(token, verified, exp * 1000);
    return verified;
  };

  return {
    service: self,
    async verify(header) {
      const assertion = header.get(identityHeaders.assertion) ?? undefined;
      const serviceToken = header.get(identityHeaders.service) ?? undefined;
      if (!assertion && !serviceToken) return { chain: [] };
      let service: string | undefined;
      let act: readonly string[] = [];
      if (serviceToken) {
        const token = await verifyToken(serviceToken, tokenTypes.service, "service token");
        if (token.aud !== self) throw refuse(`service token from ${token.signer} is addressed to ${token.aud}, not ${self}`);
        service = token.signer;
        act = token.act;
      }
      if (!assertion) return { service, chain: service ? [service] : [] };
      const user = await verifyToken(assertion, tokenTypes.user, "identity assertion");
      if (user.signer !== GATEWAY_SERVICE)
        throw refuse(`identity assertion signed by ${user.signer}: only the gateway asserts users`);
      // Directly from the gateway it is addressed to this service; passed on, to the first service it reached.
      const holder = service === undefined ? self : (act[0] ?? service);
      if (user.aud !== holder) {
        throw refuse(
          service === undefined
            ? `identity assertion is addressed to ${user.aud}, not ${self}`
            : `identity assertion is addressed to ${user.aud}: ${service} may pass on only users who called ${holder}`,
        );
      }
      const chain = service === undefined ? [GATEWAY_SERVICE] : [GATEWAY_SERVICE, ...act, service];
      return { user: user.user, service, chain, assertion };
    },
  };
}
