import { Code, ConnectError } from "@connectrpc/connect";
import type { AuthEntry } from "../auth-cache.js";
import { connectError } from "../connect-error.js";
import { rateLimitedError } from "../error-response.js";
import type { Bucket } from "../rate-limiter.js";
import { finishRejected, internalError, type PendingCall, type ProxyContext } from "./call.js";
import { forward } from "./forward.js";

/** Stage 3, policy: the method's permissions (from the caller's roles), then its per-user and per-IP rates; then `forward`. */
export function authorized(ctx: ProxyContext, call: PendingCall, entry: AuthEntry): void {
  const needed = call.route.policy.permissions;
  if (needed.length > 0) {
    const roles = entry.identity.roles;
    for (const permission of needed) {
      if (!roles.includes(permission)) {
        call.record.userId = entry.identity.userId;
        finishRejected(ctx, call, connectError(`${call.route.path} needs the permission "${permission}"`, Code.PermissionDenied));
        return;
      }
    }
  }
  limit(ctx, call, entry);
}

/** Applies the method's per-user and per-IP rates, then forwards. */
export function limit(ctx: ProxyContext, call: PendingCall, entry: AuthEntry | undefined): void {
  const { policy, path } = call.route;
  const limiter = ctx.options.rateLimiter;
  const buckets: Bucket[] = [];
  if (limiter !== undefined) {
    if (policy.perUser !== undefined && entry !== undefined) {
      const r = policy.perUser;
      buckets.push({ key: `${path}|u|${entry.identity.userId}`, count: r.count, periodMs: r.periodSeconds * 1000 });
    }
    if (policy.perIp !== undefined) {
      const r = policy.perIp;
      buckets.push({ key: `${path}|ip|${call.forwarded.clientIp}`, count: r.count, periodMs: r.periodSeconds * 1000 });
    }
  }
  if (limiter === undefined || buckets.length === 0) {
    forward(ctx, call, entry);
    return;
  }
  const decide = (waitMs: number) => {
    if (waitMs <= 0) {
      forward(ctx, call, entry);
      return;
    }
    if (entry !== undefined) call.record.userId = entry.identity.userId;
    call.record.rateLimited = true;
    const what = buckets.map((b) =>
      b.key.includes("|u|") ? `${policy.perUser?.text} per user` : `${policy.perIp?.text} per IP`,
    );
    finishRejected(ctx, call, rateLimitedError(waitMs, what.join(" and ")));
  };
  const result = limiter.take(buckets);
  if (typeof result === "number") decide(result);
  else
    result
      .then(decide, (error: unknown) => finishRejected(ctx, call, ConnectError.from(error)))
      .catch((error: unknown) => internalError(ctx, call, error));
}
