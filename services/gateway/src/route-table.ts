import type { DescMethod, DescService, FileRegistry } from "@bufbuild/protobuf";
import { type EffectivePolicy, resolvePolicy, serviceNameOf } from "@portico/kit";
import type { Upstream } from "./upstream.js";

/** One routable method: where it goes and the policy the gateway applies. */
export interface Route {
  /** `/package.Service/Method` */
  readonly path: string;
  readonly method: DescMethod;
  readonly service: DescService;
  readonly kind: DescMethod["methodKind"];
  readonly policy: EffectivePolicy;
  /** Deadline cap and default, policy or gateway default. */
  readonly timeoutMs: number;
  /** Largest unary body or stream message, policy or gateway default. */
  readonly maxRequestBytes: number;
  /** Unset when the service has no upstream or the method is INTERNAL (listed, not routed). */
  readonly upstream: Upstream | undefined;
  /** The service name the identity assertion is addressed to (`portico.greeter.v1` → `greeter`). */
  readonly audience: string;
}

function audienceOf(service: DescService): string {
  try {
    return serviceNameOf(service.typeName);
  } catch {
    return service.typeName;
  }
}

export interface RouteTableOptions {
  registry: FileRegistry;
  upstreams: ReadonlyMap<string, Upstream>;
  defaultTimeoutMs: number;
  defaultMaxRequestBytes: number;
}

export interface RouteTable {
  /** The route of a `:path` (no query string); undefined when unknown, unrouted or INTERNAL. */
  get(path: string): Route | undefined;
  /** Every method of the image's services, routed or not, sorted by path. */
  readonly all: readonly Route[];
  /** The image's types (for JSON transcoding and reflection). */
  readonly registry: FileRegistry;
}

/**
 * Every service in the registry, sorted by name in code-point order: not `localeCompare`, whose
 * first call makes V8 open ICU's collation data of every locale it has (about 2.5 MB of the node
 * binary's pages resident in the gateway for good; bench/README.md, "Gateway memory, branch mem8").
 */
export function servicesOf(registry: FileRegistry): DescService[] {
  const services: DescService[] = [];
  for (const type of registry) if (type.kind === "service") services.push(type);
  return services.sort((a, b) => (a.typeName < b.typeName ? -1 : a.typeName > b.typeName ? 1 : 0));
}

/** Builds the `:path` → route map once, from the image's descriptors and the configured upstreams. */
export function createRouteTable(options: RouteTableOptions): RouteTable {
  const routable = new Map<string, Route>();
  const all: Route[] = [];
  for (const service of servicesOf(options.registry)) {
    const upstream = options.upstreams.get(service.typeName);
    const audience = audienceOf(service);
    for (const method of service.methods) {
      const policy = resolvePolicy(method);
      const route: Route = {
        path: `/${service.typeName}/${method.name}`,
        method,
        service,
        kind: method.methodKind,
        policy,
        timeoutMs: policy.timeoutMs ?? options.defaultTimeoutMs,
        maxRequestBytes: policy.maxRequestBytes ?? options.defaultMaxRequestBytes,
        upstream: policy.access === "internal" ? undefined : upstream,
        audience,
      };
      all.push(route);
      if (route.upstream) routable.set(route.path, route);
    }
  }
  return { get: (path) => routable.get(path), all, registry: options.registry };
}
