import { ConfigError } from "@portico/kit";
import { type Route, type RouteTable, servicesOf } from "../route-table.js";
import { type HttpBinding, readHttpBindings } from "./http-rule.js";
import { createPathMatcher, type PathMatcher } from "./path-matcher.js";

/** The REST side of a route table: the bindings of its routed methods, compiled once. */
export interface RestRoutes {
  /** Every binding of a routed (non-INTERNAL, with an upstream) method. */
  readonly bindings: readonly HttpBinding[];
  readonly matcher: PathMatcher;
  /** The RPC route a binding enters: the same policy, upstream and limits. */
  routeOf(binding: HttpBinding): Route;
}

/**
 * Reads the `google.api.http` bindings of the image's services and compiles the routed ones into a
 * path matcher. An invalid binding fails start-up (and a reload) naming the method and the reason.
 */
export function createRestRoutes(table: RouteTable): RestRoutes {
  let all: HttpBinding[];
  try {
    all = readHttpBindings(servicesOf(table.registry));
  } catch (error) {
    throw new ConfigError(`descriptor image: ${(error as Error).message}`);
  }
  const routes = new Map<HttpBinding, Route>();
  for (const binding of all) {
    const route = table.get(`/${binding.method.parent.typeName}/${binding.method.name}`);
    if (route !== undefined) routes.set(binding, route);
  }
  const bindings = [...routes.keys()];
  return {
    bindings,
    matcher: createPathMatcher(bindings),
    routeOf: (binding) => routes.get(binding) as Route,
  };
}
