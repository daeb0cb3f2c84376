import type { Logger } from "@portico/kit";
import type { AuthCache } from "./auth-cache.js";
import type { Cors } from "./cors.js";
import type { Downstream, IncomingHttpHeaders, Peer } from "./downstream.js";
import type { CallRecord, ProxyContext } from "./pipeline/call.js";
import { route } from "./pipeline/route.js";
import type { RateLimiter } from "./rate-limiter.js";
import type { RouteTable } from "./route-table.js";
import type { ServerReflection } from "./server-reflection.js";
import type { TrustedProxies } from "./trusted-proxies.js";

export type { CallRecord };

export interface ProxyOptions {
  /** The current route table (swapped on reload). */
  routes: () => RouteTable;
  auth: AuthCache;
  /**
   * Headers of a call forwarded for no user (a PUBLIC method called without a token): the gateway's
   * own service token addressed to `audience`, so the service can believe the client address the
   * gateway hands on. Calls for a user carry the user's assertion instead (`auth.headers`).
   */
  anonymousHeaders?: (audience: string) => Readonly<Record<string, string>>;
  /** Peers whose x-forwarded-* are believed (current config). */
  trustedProxies: () => TrustedProxies;
  logger: Logger;
  /**
   * REST (rest/): answers true when it took the request (a binding, a path under the bindings'
   * prefixes, the OpenAPI document or the reference page); asked before the web app's files.
   */
  rest?: RestStage;
  /** Serves non-RPC GET requests (the web app); answers false when it has nothing. */
  staticFiles?: (down: Downstream, headers: IncomingHttpHeaders, path: string) => boolean;
  /** Called once per RPC when it ends. */
  onCallEnd?: (record: CallRecord) => void;
  /** CORS for browser origins (current config). */
  cors?: () => Cors | undefined;
  /** Server reflection for the reflection paths (rebuilt on reload). */
  reflection?: () => ServerReflection | undefined;
  /** Token buckets for the policies' per-user and per-IP rates. */
  rateLimiter?: RateLimiter;
  /** Largest response message the gateway assembles when it translates a call (current config; default 16 MiB). */
  maxResponseMessageBytes?: () => number;
}

export { defaultMaxResponseMessageBytes } from "./pipeline/forward.js";

/** The REST stage (rest/rest-stage.ts): true when it took the request. */
export type RestStage = (
  ctx: ProxyContext,
  down: Downstream,
  headers: IncomingHttpHeaders,
  peer: Peer,
  method: string,
  rawPath: string,
) => boolean;

export interface Proxy {
  /** Handles one request: an HTTP/2 stream or an adapted HTTP/1.1 request. */
  handle(down: Downstream, headers: IncomingHttpHeaders, peer: Peer): void;
  /** Calls in flight. */
  readonly inFlight: number;
}

/**
 * The gateway's hot path: routes on `:path`, applies the method's policy, and forwards request and
 * response bodies untouched over a pooled HTTP/2 session to the upstream. A call goes through
 * named stages, one file each in `pipeline/`: `route.ts` → `authenticate.ts` → `policy.ts` →
 * `forward.ts` → `pass-through.ts` or `../translate.ts`, with `retry.ts` before any response byte
 * and `call-life.ts` for the bookkeeping (deadline, in-flight counts, cancel, failure). The stages
 * are plain functions of one shared context: no closure or object per call beyond the call's own.
 */
export function createProxy(options: ProxyOptions): Proxy {
  const ctx: ProxyContext = { options, inFlight: 0 };
  return {
    handle: (down, headers, peer) => route(ctx, down, headers, peer),
    get inFlight() {
      return ctx.inFlight;
    },
  };
}
