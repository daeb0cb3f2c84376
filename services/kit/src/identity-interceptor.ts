import type { Interceptor } from "@connectrpc/connect";
import type { CallGuard } from "./call-guard.js";
import { callerKey, identityKey } from "./identity.js";

/**
 * Checks every call against its method's policy (see createCallGuard) and puts the caller in the
 * handler context: `ctx.values.get(callerKey)` (user, calling service, chain) and
 * `ctx.values.get(identityKey)` (the user), read with `requireIdentity(ctx)`. The plain `x-user-*`
 * headers are never trusted, so a backend port reached directly authenticates nobody.
 */
export function createIdentityInterceptor(guard: CallGuard): Interceptor {
  return (next) => async (req) => {
    const caller = await guard.check(req.method, req.header);
    req.contextValues.set(callerKey, caller);
    req.contextValues.set(identityKey, caller.user);
    return next(req);
  };
}
