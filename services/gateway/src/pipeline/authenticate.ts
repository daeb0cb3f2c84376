import { Code, ConnectError } from "@connectrpc/connect";
import type { AuthEntry } from "../auth-cache.js";
import { bearerToken } from "../bearer-token.js";
import { connectError } from "../connect-error.js";
import { finishRejected, internalError, type PendingCall, type ProxyContext } from "./call.js";
import { authorized, limit } from "./policy.js";

/**
 * Stage 2, authenticate: the bearer token through the auth cache (a miss asks the auth service,
 * with the turn's other misses: the auth client's `AuthenticateBatch`). AUTHENTICATED methods need a valid one; PUBLIC methods learn the caller when a
 * valid token comes along. Then `policy`.
 */
export function authenticate(ctx: ProxyContext, call: PendingCall): void {
  const { headers, route } = call;
  const token = bearerToken(headers.authorization);
  if (route.policy.access === "public") {
    // A public method still learns who calls it when a valid token comes along (e.g. Logout).
    const entry = token === undefined ? undefined : ctx.options.auth.get(token);
    if (token === undefined || entry !== undefined) limit(ctx, call, entry);
    else verifyThen(ctx, call, token, limit, anonymous);
    return;
  }
  if (token === undefined) {
    const why = headers.authorization === undefined ? "missing access token" : "malformed Authorization header";
    finishRejected(ctx, call, connectError(`${why}: send "Authorization: Bearer <access token>"`, Code.Unauthenticated));
    return;
  }
  const entry = ctx.options.auth.get(token);
  if (entry !== undefined) authorized(ctx, call, entry);
  else verifyThen(ctx, call, token, authorized, refused);
}

/** A cache miss: the auth service asked once (shared by concurrent calls with the token), then `next` or `failed`. */
function verifyThen(
  ctx: ProxyContext,
  call: PendingCall,
  token: string,
  next: (ctx: ProxyContext, call: PendingCall, entry: AuthEntry) => void,
  failed: (ctx: ProxyContext, call: PendingCall, error: unknown) => void,
): void {
  ctx.options.auth
    .verify(token)
    .then(
      (verified) => next(ctx, call, verified),
      (error: unknown) => failed(ctx, call, error),
    )
    .catch((error: unknown) => internalError(ctx, call, error));
}

/** A public method's caller whose token did not verify goes on as anonymous. */
function anonymous(ctx: ProxyContext, call: PendingCall): void {
  limit(ctx, call, undefined);
}

function refused(ctx: ProxyContext, call: PendingCall, error: unknown): void {
  finishRejected(ctx, call, ConnectError.from(error));
}
