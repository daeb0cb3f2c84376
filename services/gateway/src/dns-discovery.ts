import * as dns from "node:dns";
import * as net from "node:net";
import type { Logger } from "@portico/kit";

/** Answers every address a host name has now (A and AAAA); an empty list when the name has none. */
export type HostResolver = (host: string) => Promise<string[]>;

/** Resolution errors that mean "the name has no address now", not "DNS did not answer". */
const noAddress = new Set([dns.NOTFOUND, dns.NODATA, "ENOTFOUND", "ENODATA"]);

/**
 * The default resolver: the system's (`getaddrinfo`, so `/etc/hosts` and the search domains count,
 * as for any other program on the host); with `servers`, those DNS servers are asked directly for
 * A and AAAA records (`"10.96.0.10"`, `"127.0.0.1:5353"`, `"[::1]:53"`).
 */
export function createHostResolver(servers?: readonly string[]): HostResolver {
  if (servers === undefined || servers.length === 0) {
    return async (host) => {
      try {
        return (await dns.promises.lookup(host, { all: true, verbatim: true })).map((a) => a.address);
      } catch (error) {
        if (noAddress.has((error as NodeJS.ErrnoException).code ?? "")) return [];
        throw error;
      }
    };
  }
  const resolver = new dns.promises.Resolver({ timeout: 1000, tries: 2 });
  resolver.setServers([...servers]);
  const family = (query: Promise<string[]>) =>
    query.catch((error: NodeJS.ErrnoException) => {
      if (noAddress.has(error.code ?? "")) return [] as string[];
      throw error;
    });
  return async (host) => {
    const [v4, v6] = await Promise.all([family(resolver.resolve4(host)), family(resolver.resolve6(host))]);
    return [...v4, ...v6];
  };
}

/** A literal IPv4 or IPv6 address (in a URL's brackets or not): used as it is, never resolved. */
export function isLiteralAddress(host: string): boolean {
  return net.isIP(host.replace(/^\[|\]$/g, "")) !== 0;
}

export interface DnsDiscoveryOptions {
  /** The host name to follow. */
  host: string;
  resolve: HostResolver;
  /** Between two resolutions (ms). */
  refreshMs: number;
  /** Every resolution that answered: the addresses now, sorted. */
  onAddresses: (addresses: string[]) => void;
  logger?: Logger;
  /** For logs: the upstream service. */
  service: string;
}

export interface DnsDiscovery {
  /** Settles once the first resolution has answered or failed. */
  readonly first: Promise<void>;
  /** Resolves again soon (a connection failed): at once unless a resolution ran in the last 500 ms. */
  refresh(): void;
  close(): void;
}

/** Shortest time between two resolutions that failures ask for. */
const minRefreshGapMs = 500;

/**
 * Follows a host name as Envoy's STRICT_DNS cluster does: resolves it at once, then every
 * `refreshMs` and soon after a connection failure; each answer is the full set of addresses. A
 * resolution that fails (DNS down, timeout) keeps the addresses it had; a name that has no address
 * any more empties the set.
 */
export function startDnsDiscovery(options: DnsDiscoveryOptions): DnsDiscovery {
  let closed = false;
  let running = false;
  let last = 0;
  let failing = false;
  let previous = "";
  let timer: NodeJS.Timeout | undefined;
  /** A resolution is already due soon (a failure asked for it). */
  let soon = false;
  let answered: () => void = () => {};
  const first = new Promise<void>((resolve) => {
    answered = resolve;
  });

  const schedule = (ms: number) => {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(run, ms);
    timer.unref();
  };
  const run = () => {
    if (closed || running) return;
    running = true;
    soon = false;
    last = Date.now();
    options
      .resolve(options.host)
      .then(
        (found) => {
          if (closed) return;
          const addresses = [...new Set(found)].sort();
          if (failing) options.logger?.info({ upstream: options.service, host: options.host }, "DNS resolves again");
          failing = false;
          const key = addresses.join(",");
          if (key !== previous) {
            options.logger?.info({ upstream: options.service, host: options.host, addresses }, "upstream addresses changed");
            previous = key;
          }
          options.onAddresses(addresses);
        },
        (error: Error) => {
          if (closed || failing) return;
          failing = true;
          options.logger?.warn(
            { upstream: options.service, host: options.host, err: error.message },
            "DNS resolution failed: keeping the addresses known",
          );
        },
      )
      .finally(() => {
        answered();
        running = false;
        schedule(options.refreshMs);
      });
  };
  run();
  return {
    first,
    refresh() {
      if (closed || running || soon) return;
      soon = true;
      schedule(Math.max(0, last + minRefreshGapMs - Date.now()));
    },
    close() {
      closed = true;
      clearTimeout(timer);
    },
  };
}
