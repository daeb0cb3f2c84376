import { randomUUID } from "node:crypto";
import type { IncomingHttpHeaders } from "./downstream.js";
import type { ForwardedFor } from "./forwarded-for.js";
import type { HeaderList } from "./h2/index.js";
import { nextTraceparent } from "./traceparent.js";

/**
 * Request headers never copied from the caller: hop-by-hop headers, credentials, and every header
 * the gateway sets itself (identity, request id, forwarding, trace context, deadlines).
 */
const dropped = new Set([
  "host",
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "http2-settings",
  "authorization",
  "proxy-authorization",
  "x-user-id",
  "x-user-tier",
  "x-user-roles",
  "x-session-id",
  "x-portico-identity",
  "x-portico-client-address",
  "x-portico-service",
  "x-request-id",
  "x-client-request-id",
  "x-forwarded-for",
  "x-forwarded-host",
  "x-forwarded-proto",
  "forwarded",
  "traceparent",
  "grpc-timeout",
  "connect-timeout-ms",
]);

/**
 * The client address the gateway decided (trusted proxies, right-to-left), for every backend: the
 * one address per-IP limits in services use. Gateway-owned: a caller's copies never pass.
 */
export const clientAddressHeader = "x-portico-client-address";

/** Whether the caller may not set this request header (it is dropped or set by the gateway). */
export function isGatewayOwnedHeader(name: string): boolean {
  return dropped.has(name.toLowerCase());
}

/** The request id the gateway gives an upstream request (`x-request-id`). */
export function newRequestId(): string {
  return randomUUID();
}

/**
 * The fields of the upstream request as the HPACK list the H2 engine sends, pseudo-headers first:
 * the caller's, minus hop-by-hop and gateway-owned ones, plus identity, request id, forwarding and
 * trace context. A list, not an object: a field named `__proto__` or `constructor` is just a field,
 * and no header object is built, walked and sorted per call. The caller's names are lowercase
 * (HTTP/2 refuses others, HTTP/1.1 lowercases them); a caller's field that identity also sets is
 * left out, identity's value stands.
 */
export function upstreamRequestFields(
  headers: IncomingHttpHeaders,
  pseudo: { method: string; scheme: string; path: string; authority: string },
  forwarded: ForwardedFor,
  identity: Readonly<Record<string, string>> | undefined,
  requestId: string,
  traceparent: string | undefined,
): HeaderList {
  const list: HeaderList = [
    [":method", pseudo.method],
    [":scheme", pseudo.scheme],
    [":authority", pseudo.authority],
    [":path", pseudo.path],
  ];
  for (const name in headers) {
    if (name.charCodeAt(0) === 58 /* ":" */ || dropped.has(name)) continue;
    if (identity !== undefined && Object.hasOwn(identity, name)) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (typeof value === "string") list.push([name, value]);
    else for (let i = 0; i < value.length; i++) list.push([name, value[i] as string]);
  }
  if (identity !== undefined) {
    for (const name in identity) list.push([name, identity[name] as string]);
  }
  const clientRequestId = headers["x-request-id"];
  if (typeof clientRequestId === "string" && clientRequestId.length <= 200) list.push(["x-client-request-id", clientRequestId]);
  list.push(["x-request-id", requestId]);
  list.push(["x-forwarded-for", forwarded.header]);
  list.push([clientAddressHeader, forwarded.clientIp]);
  list.push(["x-forwarded-proto", forwarded.proto]);
  if (forwarded.host !== "") list.push(["x-forwarded-host", forwarded.host]);
  list.push(["traceparent", traceparent ?? nextTraceparent(headers.traceparent)]);
  return list;
}
