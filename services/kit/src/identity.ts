import { Code, ConnectError, createContextKey, type HandlerContext } from "@connectrpc/connect";

/** The user a call is for, as the gateway verified and asserted it. */
export interface Identity {
  userId: string;
  tier: string;
  roles: string[];
  sessionId: string;
  /** The client address the gateway decided (trusted proxies, right to left); "" when unknown. */
  clientAddress: string;
}

/** Who is calling: the user (if any), the calling service (if any) and the services the call went through. */
export interface Caller {
  /** The user the call is for: from the gateway's assertion, directly or delegated by a service. */
  readonly user?: Identity;
  /** The service whose own token authenticated this call; undefined for a call the gateway forwarded for a user, or an anonymous one. */
  readonly service?: string;
  /** The services the call passed through, first to last: `["gateway"]`, `["gateway", "greeter"]`; empty for anonymous calls. */
  readonly chain: readonly string[];
  /** The gateway's assertion the user came with: what a service presents to pass the user on (kit's service client does). */
  readonly assertion?: string;
}

/** The headers of Portico's identity scheme. */
export const identityHeaders = {
  /** The gateway's signed user assertion (audience-bound, ≤ 60 s). */
  assertion: "x-portico-identity",
  /** The calling service's own token (`iss` = caller, `aud` = callee). */
  service: "x-portico-service",
  /** Unsigned copies the gateway adds only when configured to (`identityClaimHeaders`), for logs; never trusted by kit. */
  userId: "x-user-id",
  tier: "x-user-tier",
  roles: "x-user-roles",
  sessionId: "x-session-id",
} as const;

/** The `typ` header of each kind of token, so that one kind is never accepted as another. */
export const tokenTypes = { user: "portico-user+jwt", service: "portico-service+jwt" } as const;

/** The service name of the gateway: the only issuer of user assertions. */
export const GATEWAY_SERVICE = "gateway";

/** Where handlers find the user: `ctx.values.get(identityKey)`; undefined for calls for no user. */
export const identityKey = createContextKey<Identity | undefined>(undefined, {
  description: "the user verified from x-portico-identity",
});

const anonymous: Caller = { chain: [] };

/** Where handlers find the whole caller: user, calling service and chain. */
export const callerKey = createContextKey<Caller>(anonymous, { description: "the verified caller" });

/** The caller of an authenticated handler; throws `unauthenticated` for calls for no user. */
export function requireIdentity(ctx: Pick<HandlerContext, "values">): Identity {
  const identity = ctx.values.get(identityKey);
  if (!identity) throw new ConnectError("this method needs an authenticated caller", Code.Unauthenticated);
  return identity;
}
