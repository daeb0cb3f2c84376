import { isIP } from "node:net";
import type { IncomingHttpHeaders, Peer } from "./downstream.js";
import type { TrustedProxies } from "./trusted-proxies.js";

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
