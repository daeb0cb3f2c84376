import { Code, type Interceptor } from "@connectrpc/connect";
import { resolvePolicy } from "@portico/kit";
import type { AuthCache } from "./auth-cache.js";
import { bearerToken } from "./bearer-token.js";
import { connectError } from "./connect-error.js";

/**
 * Guards the gateway's own API on the admin port as the public port guards a method: the bearer
 * token is authenticated through the same cache and `AuthService/Authenticate` call, and the
 * caller needs every permission of the method's policy (`gateway.admin` for GatewayService, from
 * its `.proto`). No token or a bad one: `unauthenticated`; a missing role: `permission_denied`.
 */
export function createAdminAuthorization(auth: AuthCache): Interceptor {
  return (next) => async (req) => {
    const policy = resolvePolicy(req.method);
    if (policy.access !== "public") {
      const header = req.header.get("authorization");
      const token = bearerToken(header);
      if (token === undefined) {
        const why = header === null ? "missing access token" : "malformed Authorization header";
        throw connectError(`${why}: send "Authorization: Bearer <access token>"`, Code.Unauthenticated);
      }
      const entry = auth.get(token) ?? (await auth.verify(token));
      for (const permission of policy.permissions) {
        if (!entry.identity.roles.includes(permission)) {
          throw connectError(
            `/${req.service.typeName}/${req.method.name} needs the permission "${permission}"`,
            Code.PermissionDenied,
          );
        }
      }
    }
    return next(req);
  };
}
