import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { CallVerifier } from "./call-verifier.js";
import { type EffectivePolicy, resolvePolicy } from "./effective-policy.js";
import type { Caller } from "./identity.js";

/** Enforces a method's .proto policy on the verified caller. */
export interface CallGuard {
  /** The caller of a call to `method`, or a ConnectError: `unauthenticated` or `permission_denied`. */
  check(method: DescMethod, header: { get(name: string): string | null }): Promise<Caller>;
}

type Rule = Pick<EffectivePolicy, "access" | "callers" | "permissions">;
const healthRule: Rule = { access: "public", callers: [], permissions: [] };
const path = (method: DescMethod) => `/${method.parent.typeName}/${method.name}`;

/**
 * The policy of every service, deny by default: INTERNAL methods answer only the services listed
 * in `callers` (a service token is required); AUTHENTICATED ones need a user (the gateway's
 * assertion, directly or passed on by a service); listed permissions must be among the user's
 * roles. Credentials that are presented and not valid are refused on every method, PUBLIC ones
 * too. Health checks (`grpc.health.v1.Health`) need nothing: probes call them directly.
 */
export function createCallGuard(verifier: CallVerifier): CallGuard {
  const rules = new Map<DescMethod, Rule>();
  const ruleOf = (method: DescMethod) => {
    let rule = rules.get(method);
    if (rule === undefined) {
      rule = method.parent.typeName === "grpc.health.v1.Health" ? healthRule : resolvePolicy(method);
      rules.set(method, rule);
    }
    return rule;
  };
  return {
    async check(method, header) {
      const rule = ruleOf(method);
      if (rule === healthRule) return { chain: [] };
      const caller = await verifier.verify(header);
      if (rule.access === "internal") {
        if (caller.service === undefined) {
          throw new ConnectError(
            `${path(method)} is internal: call it with a service token (allowed callers: ${rule.callers.join(", ") || "none"})`,
            Code.Unauthenticated,
          );
        }
        if (!rule.callers.includes(caller.service)) {
          throw new ConnectError(
            `${path(method)} does not accept calls from the service ${caller.service}`,
            Code.PermissionDenied,
          );
        }
      } else if (rule.access === "authenticated" && caller.user === undefined) {
        throw new ConnectError(
          `${path(method)} needs an authenticated user: call it through the gateway, or pass the caller on with kit's service client`,
          Code.Unauthenticated,
        );
      }
      if (rule.permissions.length > 0) {
        if (caller.user === undefined)
          throw new ConnectError(`${path(method)} needs an authenticated user`, Code.Unauthenticated);
        for (const permission of rule.permissions) {
          if (!caller.user.roles.includes(permission)) {
            throw new ConnectError(`${path(method)} needs the permission "${permission}"`, Code.PermissionDenied);
          }
        }
      }
      return caller;
    },
  };
}
