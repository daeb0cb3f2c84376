import type { Downstream, IncomingHttpHeaders, OutgoingHttpHeaders } from "./downstream.js";

/** Request headers a browser's Connect or gRPC-Web client sends. */
const allowedHeaders = [
  "authorization",
  "content-type",
  "connect-protocol-version",
  "connect-timeout-ms",
  "connect-content-encoding",
  "connect-accept-encoding",
  "content-encoding",
  "accept-encoding",
  "grpc-timeout",
  "grpc-encoding",
  "grpc-accept-encoding",
  "x-grpc-web",
  "x-user-agent",
  "x-request-id",
  "traceparent",
  "tracestate",
].join(", ");

/** Response headers and trailers browser clients must be able to read. */
const exposedHeaders = [
  "grpc-status",
  "grpc-message",
  "grpc-status-details-bin",
  "grpc-encoding",
  "connect-content-encoding",
  "content-encoding",
  "retry-after",
  "x-request-id",
].join(", ");

export interface Cors {
  /** Answers an OPTIONS preflight. */
  preflight(down: Downstream, headers: IncomingHttpHeaders): void;
  /** Adds the CORS response headers to whatever the call answers, when the origin is allowed. */
  decorate(down: Downstream, origin: string): void;
}

/**
 * CORS for the configured browser origins; undefined when none are configured. A listed origin is
 * answered with itself and `access-control-allow-credentials: true` (cookies and Authorization
 * may go along). `*` lets any other origin call without credentials: the answer is then the
 * literal `*`, never the caller's origin with credentials, which would let any web site call the
 * gateway with its visitors' cookies.
 */
export function createCors(origins: readonly string[] | undefined): Cors | undefined {
  if (!origins || origins.length === 0) return undefined;
  const any = origins.includes("*");
  const allowed = new Set(origins.filter((o) => o !== "*").map((o) => o.replace(/\/$/, "")));
  const credentialed = (origin: string): OutgoingHttpHeaders => ({
    "access-control-allow-origin": origin,
    "access-control-allow-credentials": "true",
    "access-control-expose-headers": exposedHeaders,
    vary: "origin",
  });
  const anyOrigin: OutgoingHttpHeaders = {
    "access-control-allow-origin": "*",
    "access-control-expose-headers": exposedHeaders,
    vary: "origin",
  };
  /** The CORS headers for `origin`; undefined when it may not call. */
  const headersFor = (origin: string): OutgoingHttpHeaders | undefined =>
    allowed.has(origin) ? credentialed(origin) : any ? anyOrigin : undefined;
  return {
    preflight(down, headers) {
      const origin = headers.origin;
      const out: OutgoingHttpHeaders = { ":status": 204, vary: "origin" };
      const cors = typeof origin === "string" ? headersFor(origin) : undefined;
      if (cors !== undefined) {
        Object.assign(out, cors, {
          "access-control-allow-methods": "GET, POST, PUT, PATCH, DELETE",
          "access-control-allow-headers": allowedHeaders,
          "access-control-max-age": "7200",
        });
      }
      down.respond(out, { endStream: true });
      down.resume();
    },
    decorate(down, origin) {
      const extra = headersFor(origin);
      if (extra === undefined) return;
      const respond = down.respond.bind(down);
      down.respond = (headers, options) => respond(Object.assign(headers, extra), options);
    },
  };
}
