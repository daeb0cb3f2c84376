import { BlockList, isIP } from "node:net";

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
