import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { GatewayService } from "@portico/gen/portico/gateway/v1/gateway_pb.js";
import { Access, type Policy, PolicySchema } from "@portico/gen/portico/gateway/v1/options_pb.js";
import type { AccessLevel } from "@portico/kit";
import type { Route, RouteTable } from "./route-table.js";
import type { Upstream } from "./upstream.js";

const accessEnum: Record<AccessLevel, Access> = {
  public: Access.PUBLIC,
  authenticated: Access.AUTHENTICATED,
  internal: Access.INTERNAL,
};

/** The effective policy of a route as the proto message, with the gateway's defaults filled in. */
function policyOf(route: Route): Policy {
  const p = route.policy;
  return create(PolicySchema, {
    access: accessEnum[p.access],
    permissions: [...p.permissions],
    rateLimit: p.perUser || p.perIp ? { perUser: p.perUser?.text ?? "", perIp: p.perIp?.text ?? "" } : undefined,
    timeout: { seconds: BigInt(Math.floor(route.timeoutMs / 1000)), nanos: (route.timeoutMs % 1000) * 1_000_000 },
    maxRequestBytes: route.maxRequestBytes,
  });
}

const kindNames: Record<string, string> = {
  unary: "unary",
  server_streaming: "server_streaming",
  client_streaming: "client_streaming",
  bidi_streaming: "bidi_streaming",
};

/** `portico.gateway.v1.GatewayService` on the admin port: the routes and the upstreams' health. */
export function createGatewayService(options: {
  routes: () => RouteTable;
  upstreams: () => Iterable<Upstream>;
}): ServiceImpl<typeof GatewayService> {
  return {
    listRoutes() {
      return {
        routes: options.routes().all.map((route) => ({
          path: route.path,
          service: route.service.typeName,
          method: route.method.name,
          kind: kindNames[route.kind] ?? route.kind,
          idempotent: route.policy.idempotent,
          upstream: route.upstream?.service ?? "",
          policy: policyOf(route),
        })),
      };
    },
    getUpstreamHealth() {
      const now = Date.now();
      return {
        upstreams: [...options.upstreams()].map((u) => ({
          service: u.service,
          targets: u.targets.map((t) => ({
            address: t.address,
            protocol: u.protocol,
            healthy: t.healthy && t.ejectedUntil <= now,
            outstanding: t.outstanding,
            lastError: t.lastError,
          })),
        })),
      };
    },
  };
}

export { GatewayService };
