import { randomFillSync, randomUUID } from "node:crypto";
import type { IncomingHttpHeaders, OutgoingHttpHeaders, Peer } from "./downstream.js";

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

/** Whether the caller may not set this request header (it is dropped or set by the gateway). */
export function isGatewayOwnedHeader(name: string): boolean {
  return dropped.has(name.toLowerCase());
}

const pool = Buffer.allocUnsafe(4096);
let poolPos = pool.length;

/** Random lowercase hex from a refilled entropy pool (cheap per call). */
function randomHex(bytes: number): string {
  if (poolPos + bytes > pool.length) {
    randomFillSync(pool);
    poolPos = 0;
  }
  const hex = pool.toString("hex", poolPos, poolPos + bytes);
  poolPos += bytes;
  return hex;
}

const traceparentPattern = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const zeroTrace = "0".repeat(32);

/** W3C trace context: continues a valid `traceparent` with a new span id, or starts a trace. */
export function nextTraceparent(incoming: string | string[] | undefined): string {
  if (typeof incoming === "string") {
    const match = traceparentPattern.exec(incoming);
    if (match && match[1] !== zeroTrace && match[2] !== "0000000000000000") {
      return `00-${match[1]}-${randomHex(8)}-${match[3]}`;
    }
  }
  return `00-${randomHex(16)}-${randomHex(8)}-01`;
}

export interface ForwardedFor {
  /** The client address rate limits and logs use. */
  clientIp: string;
  /** The `x-forwarded-for` sent upstream. */
  header: string;
  proto: string;
  host: string;
}

function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(", ") : value;
}

/**
 * The forwarding facts of a call: the peer as the gateway saw it; a caller's own
 * `x-forwarded-*` only when the peer is a trusted proxy.
 */
export function forwardedFor(headers: IncomingHttpHeaders, peer: Peer, trustedProxies: ReadonlySet<string>): ForwardedFor {
  const host = firstValue(headers[":authority"]) ?? firstValue(headers.host) ?? "";
  const proto = peer.encrypted ? "https" : "http";
  if (trustedProxies.size === 0 || !trustedProxies.has(peer.address)) {
    return { clientIp: peer.address, header: peer.address, proto, host };
  }
  const given = firstValue(headers["x-forwarded-for"]);
  const chain = given
    ? given
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s !== "")
    : [];
  // The client is the right-most address that is not one of our trusted proxies.
  let clientIp = peer.address;
  for (let i = chain.length - 1; i >= 0; i--) {
    clientIp = chain[i] as string;
    if (!trustedProxies.has(clientIp)) break;
  }
  return {
    clientIp,
    header: chain.length > 0 ? `${chain.join(", ")}, ${peer.address}` : peer.address,
    proto: firstValue(headers["x-forwarded-proto"]) ?? proto,
    host: firstValue(headers["x-forwarded-host"]) ?? host,
  };
}

/**
 * The headers of the upstream request: the caller's, minus hop-by-hop and gateway-owned ones,
 * plus identity, request id, forwarding and trace context.
 */
export function upstreamRequestHeaders(
  headers: IncomingHttpHeaders,
  pseudo: { method: string; path: string; authority: string },
  forwarded: ForwardedFor,
  identity: Readonly<Record<string, string>> | undefined,
): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {
    ":method": pseudo.method,
    ":path": pseudo.path,
    ":scheme": "http",
    ":authority": pseudo.authority,
  };
  for (const name in headers) {
    if (name.charCodeAt(0) === 58 /* ":" */ || dropped.has(name)) continue;
    out[name] = headers[name];
  }
  if (identity !== undefined) {
    for (const name in identity) out[name] = identity[name];
  }
  const clientRequestId = headers["x-request-id"];
  if (typeof clientRequestId === "string" && clientRequestId.length <= 200) out["x-client-request-id"] = clientRequestId;
  out["x-request-id"] = randomUUID();
  out["x-forwarded-for"] = forwarded.header;
  out["x-forwarded-proto"] = forwarded.proto;
  if (forwarded.host !== "") out["x-forwarded-host"] = forwarded.host;
  out.traceparent = nextTraceparent(headers.traceparent);
  return out;
}
