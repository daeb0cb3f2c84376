import { randomFillSync, randomUUID } from "node:crypto";
import { BlockList, isIP } from "node:net";
import type { IncomingHttpHeaders, Peer } from "./downstream.js";
import type { HeaderList } from "./h2/index.js";

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

/** The peers whose `x-forwarded-*` headers are believed: single addresses and CIDR ranges, IPv4 and IPv6. */
export interface TrustedProxies {
  /** How many entries were configured (0: nobody is trusted). */
  readonly size: number;
  /** The entries as configured. */
  readonly entries: readonly string[];
  /**
   * Whether `address` is one of the entries or inside one of their ranges. IPv4-mapped IPv6
   * addresses (`::ffff:10.0.0.2`) match IPv4 entries and the other way round; anything that is
   * not an IP address matches nothing.
   */
  has(address: string): boolean;
}

const trustedProxyExamples = `an IP address or a CIDR range, e.g. "10.0.0.2", "10.0.0.0/8", "::1" or "fd00::/8"`;

interface TrustedProxyEntry {
  address: string;
  family: "ipv4" | "ipv6";
  /** Prefix length of a range; undefined for a single address. */
  prefix?: number;
}

function parseTrustedProxy(text: string): TrustedProxyEntry | string {
  const entry = text.trim();
  const slash = entry.indexOf("/");
  const address = slash < 0 ? entry : entry.slice(0, slash);
  const version = address.includes("%") ? 0 : isIP(address);
  if (version === 0) return `${JSON.stringify(text)} is not valid; expected ${trustedProxyExamples}`;
  const family = version === 4 ? "ipv4" : "ipv6";
  if (slash < 0) return { address, family };
  const max = version === 4 ? 32 : 128;
  const bits = entry.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) {
    return `${JSON.stringify(text)} is not valid: the prefix length of an ${family === "ipv4" ? "IPv4" : "IPv6"} range is /0 to /${max}; expected ${trustedProxyExamples}`;
  }
  return { address, family, prefix: Number(bits) };
}

/** Why `text` is not a trusted-proxy entry (an IP address or a CIDR range), or undefined when it is one. */
export function trustedProxyError(text: string): string | undefined {
  const parsed = parseTrustedProxy(text);
  return typeof parsed === "string" ? parsed : undefined;
}

/**
 * The trusted proxies of the config, checked with a `node:net` `BlockList`. Throws on an entry
 * that is neither an IP address nor a CIDR range, naming it.
 */
export function createTrustedProxies(entries: readonly string[], where = "trustedProxies"): TrustedProxies {
  const list = new BlockList();
  entries.forEach((text, i) => {
    const entry = parseTrustedProxy(text);
    if (typeof entry === "string") throw new Error(`${where}[${i}]: ${entry}`);
    if (entry.prefix === undefined) list.addAddress(entry.address, entry.family);
    else list.addSubnet(entry.address, entry.prefix, entry.family);
  });
  const size = entries.length;
  return {
    size,
    entries: [...entries],
    has(address) {
      if (size === 0) return false;
      const version = isIP(address);
      return version === 4 ? list.check(address, "ipv4") : version === 6 ? list.check(address, "ipv6") : false;
    },
  };
}

/**
 * One `x-forwarded-for` entry as an address: without brackets and port (`[::1]:443`, `1.2.3.4:80`,
 * as some proxies send them) and without the `::ffff:` of an IPv4-mapped address, so that the
 * same client has the same rate-limit key however a proxy spelled it. Anything else is unchanged.
 */
export function forwardedAddress(entry: string): string {
  let address = entry;
  if (address.charCodeAt(0) === 91 /* [ */) {
    const end = address.indexOf("]");
    if (end > 0) address = address.slice(1, end);
  } else {
    const colon = address.indexOf(":");
    if (colon > 0 && colon === address.lastIndexOf(":") && isIP(address.slice(0, colon)) === 4) {
      address = address.slice(0, colon);
    }
  }
  if (address.length > 7 && address.slice(0, 7).toLowerCase() === "::ffff:" && isIP(address.slice(7)) === 4) {
    address = address.slice(7);
  }
  return address;
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
 * `x-forwarded-*` only when the peer is a trusted proxy. Then, as Envoy and Traefik do, the
 * client is found by walking `x-forwarded-for` from the right, skipping trusted proxies: the
 * first address that is not one is the client (the left-most one when all of them are).
 */
export function forwardedFor(headers: IncomingHttpHeaders, peer: Peer, trustedProxies: TrustedProxies): ForwardedFor {
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
  let clientIp = peer.address;
  for (let i = chain.length - 1; i >= 0; i--) {
    clientIp = forwardedAddress(chain[i] as string);
    if (!trustedProxies.has(clientIp)) break;
  }
  return {
    clientIp,
    header: chain.length > 0 ? `${chain.join(", ")}, ${peer.address}` : peer.address,
    proto: firstValue(headers["x-forwarded-proto"]) ?? proto,
    host: firstValue(headers["x-forwarded-host"]) ?? host,
  };
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
