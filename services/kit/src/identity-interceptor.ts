import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { type AccessLevel, resolvePolicy } from "./effective-policy.js";
import { type IdentityVerifier, identityHeaders, identityKey } from "./identity.js";

/**
 * Verifies `x-portico-identity` on every call and puts the identity in the handler context.
 * Methods that are not PUBLIC or INTERNAL by their .proto policy need a valid assertion, so a
 * backend port reached directly, bypassing the gateway, authenticates nobody; the plain
 * `x-user-*` headers are never trusted. Health checks (`grpc.health.v1.Health`) need no identity:
 * load balancers and probes call them directly.
 */
export function createIdentityInterceptor(verifier: IdentityVerifier): Interceptor {
  const access = new Map<DescMethod, AccessLevel>();
  return (next) => async (req) => {
    let level = access.get(req.method);
    if (level === undefined) {
      level = req.service.typeName === "grpc.health.v1.Health" ? "public" : resolvePolicy(req.method).access;
      access.set(req.method, level);
    }
    const identity = verifier.verify(req.header.get(identityHeaders.assertion) ?? undefined);
    if (!identity && level === "authenticated") {
      throw new ConnectError("missing or invalid identity assertion: call this method through the gateway", Code.Unauthenticated);
    }
    req.contextValues.set(identityKey, identity);
    return next(req);
  };
}
