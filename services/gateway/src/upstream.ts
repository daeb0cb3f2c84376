import type { Logger } from "@portico/kit";
import {
  createHostResolver,
  type DnsDiscovery,
  type HostResolver,
  isLiteralAddress,
  startDnsDiscovery,
} from "./dns-discovery.js";
import {
  defaultConnectionsPerTarget,
  maxConnectionsPerTarget,
  type UpstreamConfig,
  type UpstreamProtocol,
} from "./gateway-config.js";
import { connectH2, type H2Session, type H2Settings } from "./h2/index.js";

export interface UpstreamOptions extends UpstreamConfig {
  /** Fully-qualified service name, for logs and health checks. */
  service: string;
  /** How long a new connection may take before calls on it fail `unavailable` (default 1000 ms). */
  connectTimeoutMs?: number;
  /** Consecutive failures that eject an address (default 5). */
  ejectAfterFailures?: number;
  /** Base ejection time, doubled per repeated ejection up to 8× (default 5000 ms). */
  ejectMs?: number;
  /**
   * A connection opened for load beyond the configured `connections` is closed once it has carried
   * no stream for this long (default 30,000 ms).
   */
  idleConnectionMs?: number;
  /** PEM certificates trusted for `https://` targets instead of Node's bundled roots. */
  ca?: string | Buffer;
  /**
   * Resolves targets given by host name: every address becomes a target of its own (default: the
   * system's resolver). Literal IP addresses are used as they are.
   */
  resolve?: HostResolver;
  /** Between two resolutions of a host name (ms, default 5000); also soon after a connection fails. */
  dnsRefreshMs?: number;
  /** A resolution added a target: it takes no call until a health check passes (start one now). */
  onTargetAdded?: (target: UpstreamTarget) => void;
  /** The same address in the upstream this one replaces (a reload): its health carries over. */
  previous?: (address: string) => UpstreamTarget | undefined;
  logger?: Logger;
}

/** One address of an upstream: a pooled HTTP/2 session, its load and its health. */
export interface UpstreamTarget {
  readonly address: string;
  readonly authority: string;
  /** Calls in flight. */
  outstanding: number;
  /** Result of the last active health check (true until one fails). */
  healthy: boolean;
  /**
   * An address found by DNS that has not passed a health check yet: it takes no call, not even
   * when every other address is out (addresses given in the config are never pending).
   */
  pending: boolean;
  /** Time (ms) until which outlier detection keeps the address out of rotation. */
  ejectedUntil: number;
  lastError: string;
  /**
   * A pooled session for the next stream, connecting when needed. `shutReader`: the stream is for a
   * caller whose window is shut, so it goes to the address's one connection that grants streams only
   * the small initial window (the pooled ones grant `upstreamStreamWindow` in their SETTINGS).
   * `streaming`: a streaming call, which joins the other streams on the first connection that can
   * take it rather than spreading (one read then carries many streams' messages).
   */
  session(shutReader?: boolean, streaming?: boolean): H2Session;
  /** A call got a response from this address. */
  succeeded(): void;
  /** A call failed to reach this address (connect error, reset, 502/503/504). */
  failed(reason: string): void;
  close(): void;
}

export interface Upstream {
  readonly service: string;
  readonly protocol: UpstreamProtocol;
  /** The upstream accepts JSON messages; otherwise JSON callers are transcoded. */
  readonly json: boolean;
  readonly targets: readonly UpstreamTarget[];
  /** Settles once every host name among the targets has been resolved (or failed to) once. */
  resolved(): Promise<void>;
  /** The address for the next call: least outstanding among the available ones, round robin on ties. */
  pick(exclude?: UpstreamTarget): UpstreamTarget;
  /**
   * This upstream's retry budget: every call forwarded to it earns a tenth of a retry, up to ten in
   * reserve, so one failing upstream cannot spend the retries of the others.
   */
  earnRetry(): void;
  /** Takes one retry from the budget; false when it is spent. */
  spendRetry(): boolean;
  /**
   * Stops this upstream: no new connection; streams in flight finish. With `successor` (a reload's
   * upstream for the same service), a call routed here before the reload and picking an address
   * only now gets one of the successor's, instead of failing on a closed address.
   */
  close(successor?: Upstream): void;
}

/** Retries in reserve at most (and at the start), and what each forwarded call earns. */
const retryReserve = 10;
const retryPerCall = 0.1;

/**
 * The receive window of an upstream stream whose caller can take data. Credit goes back once half
 * of it is read, so an answer up to 128 KiB (W3's 64 KiB message and its envelope) needs no
 * WINDOW_UPDATE at all. Loopback and data-centre round trips keep 256 KiB streams at full speed.
 */
export const upstreamStreamWindow = 256 * 1024;

/**
 * The pooled connections' SETTINGS: every stream gets upstreamStreamWindow from its first frame.
 * Granting it instead with a WINDOW_UPDATE after each request's HEADERS (a 16 KiB initial window)
 * cost a node upstream 17 % more CPU per W3 call and 12 % of its throughput (bench/README.md,
 * session 15).
 */
const pooledSettings: H2Settings = {
  initialWindowSize: upstreamStreamWindow,
  maxHeaderListSize: 64 * 1024,
};

/**
 * The SETTINGS of the one connection per address that carries streams of callers whose window is
 * shut (a zero-window reader): SETTINGS_INITIAL_WINDOW_SIZE is what such a stream makes the
 * upstream produce and the gateway hold, 16 KiB instead of 256.
 */
const shutReaderSettings: H2Settings = {
  initialWindowSize: 16 * 1024,
  maxHeaderListSize: 64 * 1024,
};

/**
 * One address: `address` names it (the URL, or for a resolved address `scheme://ip:port`); `url`
 * is the configured target (its host name is the TLS server name and the `:authority`); `connectTo`
 * the resolved IP the connections go to, when it differs from the URL's host.
 */
function createTarget(
  address: string,
  url: string,
  connectTo: string | undefined,
  options: UpstreamOptions,
  onFailure: () => void,
): UpstreamTarget {
  const connectTimeoutMs = options.connectTimeoutMs ?? 1000;
  const ejectAfter = options.ejectAfterFailures ?? 5;
  const ejectMs = options.ejectMs ?? 5000;
  const connections = Math.min(Math.max(options.connections ?? defaultConnectionsPerTarget, 1), maxConnectionsPerTarget);
  const idleConnectionMs = options.idleConnectionMs ?? 30_000;
  /** Open sessions that take new streams, oldest first. */
  const pool: H2Session[] = [];
  /** When each connection opened for load (beyond `connections`) was last given a stream. */
  const lastUsed = new WeakMap<H2Session, number>();
  let trimTimer: NodeJS.Timeout | undefined;
  let turn = 0;
  let failures = 0;
  let ejections = 0;
  let closed = false;
  /** The connection for callers with a shut window (`session(true)`), opened when first needed. */
  let shutReaders: H2Session | undefined;

  const open = (settings: H2Settings): H2Session => {
    const session = connectH2({
      url,
      host: connectTo,
      settings,
      connectionWindowSize: 16 * 1024 * 1024,
      ca: options.ca,
    });
    const timer = setTimeout(() => {
      session.destroy(new Error(`no connection to ${address} within ${connectTimeoutMs} ms`));
    }, connectTimeoutMs);
    session.once("connect", () => clearTimeout(timer));
    session.on("error", (error) => {
      target.lastError = error.message;
      onFailure();
    });
    session.on("close", () => clearTimeout(timer));
    session.unref();
    return session;
  };
  const connect = (): H2Session => {
    const session = open(pooledSettings);
    const forget = () => {
      const i = pool.indexOf(session);
      if (i >= 0) pool.splice(i, 1);
    };
    session.on("goaway", forget);
    session.on("close", forget);
    pool.push(session);
    if (pool.length > connections) {
      lastUsed.set(session, Date.now());
      trimTimer ??= setInterval(closeIdleExtras, Math.max(idleConnectionMs / 2, 10)).unref();
    }
    return session;
  };
  // The connections a burst opened go once idle, newest first; the configured ones stay.
  const closeIdleExtras = () => {
    const now = Date.now();
    for (let i = pool.length - 1; i >= connections; i--) {
      const session = pool[i] as H2Session;
      if (session.streamCount === 0 && now - (lastUsed.get(session) ?? 0) >= idleConnectionMs) {
        pool.splice(i, 1);
        session.close();
      }
    }
    if (pool.length <= connections) stopTrimming();
  };
  const stopTrimming = () => {
    if (trimTimer === undefined) return;
    clearInterval(trimTimer);
    trimTimer = undefined;
  };
  const closeAll = () => {
    stopTrimming();
    for (const session of pool.splice(0)) session.close();
    shutReaders?.close();
    shutReaders = undefined;
  };
  const shutReaderSession = (): H2Session => {
    if (shutReaders !== undefined && !shutReaders.closed && !shutReaders.destroyed) return shutReaders;
    const session = open(shutReaderSettings);
    const forget = () => {
      if (shutReaders === session) shutReaders = undefined;
    };
    session.on("goaway", forget);
    session.on("close", forget);
    shutReaders = session;
    return session;
  };

  const target: UpstreamTarget = {
    address,
    authority: new URL(url).host,
    outstanding: 0,
    healthy: true,
    pending: false,
    ejectedUntil: 0,
    lastError: "",
    session(shutReader, streaming) {
      if (closed) throw new Error("upstream closed");
      if (shutReader === true) return shutReaderSession();
      // A session that just went away may not have announced it yet.
      for (let i = pool.length - 1; i >= 0; i--) {
        const session = pool[i] as H2Session;
        if (session.closed || session.destroyed) pool.splice(i, 1);
      }
      if (streaming === true) {
        // Streams stay together: the upstream writes and the gateway reads their messages in
        // batches (W4: 1,000 messages per call cost gateway and greeter ~30 % more spread over four).
        for (let i = 0; i < Math.min(pool.length, connections); i++) {
          const session = pool[i] as H2Session;
          if (session.hasCapacity && !session.congested) return session;
        }
      }
      if (pool.length < connections) return connect();
      // The configured connections first: the least busy that can take a stream now, ties round
      // robin, so sequential calls use every one of them too. Then the connections opened for load,
      // oldest first; a new one when every session is at the upstream's concurrent-stream limit (as
      // Envoy does) or has spent the connection window the upstream grants (nginx's
      // one-call-per-connection pool never shares one), up to the cap; past it, the least busy
      // queues. Calls go back to the configured connections as soon as they have room, so the
      // connections a burst of large bodies opened do not spread (and unbatch) every call after it.
      const n = pool.length;
      const configured = Math.min(n, connections);
      const start = configured === 1 ? 0 : turn++ % configured;
      let best: H2Session | undefined;
      let leastBusy = pool[start] as H2Session;
      for (let i = 0; i < configured; i++) {
        const session = pool[(start + i) % configured] as H2Session;
        if (session.streamCount < leastBusy.streamCount) leastBusy = session;
        if (session.hasCapacity && !session.congested && (best === undefined || session.streamCount < best.streamCount))
          best = session;
      }
      if (best !== undefined) return best;
      for (let i = configured; i < n; i++) {
        const session = pool[i] as H2Session;
        if (session.hasCapacity && !session.congested) {
          lastUsed.set(session, Date.now());
          return session;
        }
        if (session.streamCount < leastBusy.streamCount) leastBusy = session;
      }
      return n < maxConnectionsPerTarget ? connect() : leastBusy;
    },
    succeeded() {
      if (failures !== 0) failures = 0;
      if (ejections !== 0 && target.ejectedUntil < Date.now()) ejections = 0;
    },
    failed(reason) {
      target.lastError = reason;
      onFailure();
      failures++;
      if (failures >= ejectAfter) {
        failures = 0;
        ejections = Math.min(ejections + 1, 4);
        target.ejectedUntil = Date.now() + ejectMs * 2 ** (ejections - 1);
        // Broken connections are not reused.
        closeAll();
      }
    },
    close() {
      closed = true;
      closeAll();
    },
  };
  return target;
}

/** `http://10.0.0.5:8082`, `https://[fd00::5]:443`: a resolved address of a target URL. */
function resolvedAddress(url: URL, ip: string): string {
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  return `${url.protocol}//${ip.includes(":") ? `[${ip}]` : ip}:${port}`;
}

/**
 * An upstream service: its addresses, each with a pool of HTTP/2 sessions (h2c, or TLS for
 * `https://`), one per address unless more are configured or needed. A target given by host name
 * is followed in DNS (Envoy's STRICT_DNS): each address it resolves to is a target of its own with
 * its own connections, health and ejection; a new address takes calls once a health check passes,
 * one that disappears takes no new call and closes when its calls are done.
 */
export function createUpstream(options: UpstreamOptions): Upstream {
  if (options.targets.length === 0) throw new Error(`upstream ${options.service}: no targets`);
  const dnsRefreshMs = options.dnsRefreshMs ?? 5000;
  if (!Number.isInteger(dnsRefreshMs) || dnsRefreshMs < 1) {
    throw new Error(`upstream ${options.service}: dnsRefreshMs ${dnsRefreshMs} is not valid; expected a whole number of ms ≥ 1`);
  }
  /** The current targets: replaced, never changed in place, so a walk over them is never disturbed. */
  let targets: UpstreamTarget[] = [];
  const discoveries: DnsDiscovery[] = [];
  for (const text of options.targets) {
    const url = new URL(text);
    if (isLiteralAddress(url.hostname)) {
      targets.push(createTarget(text, text, undefined, options, () => {}));
      continue;
    }
    // A host name: its addresses, kept by IP, come and go with each resolution.
    const byIp = new Map<string, UpstreamTarget>();
    let discovery: DnsDiscovery | undefined;
    const refresh = () => discovery?.refresh();
    discovery = startDnsDiscovery({
      host: url.hostname,
      service: options.service,
      resolve: options.resolve ?? defaultResolve,
      refreshMs: dnsRefreshMs,
      logger: options.logger,
      onAddresses(addresses) {
        const now = new Set(addresses);
        const gone: UpstreamTarget[] = [];
        for (const [ip, target] of byIp) {
          if (now.has(ip)) continue;
          byIp.delete(ip);
          gone.push(target);
        }
        const added: UpstreamTarget[] = [];
        for (const ip of addresses) {
          if (byIp.has(ip)) continue;
          const address = resolvedAddress(url, ip);
          const target = createTarget(address, text, ip, options, refresh);
          const before = options.previous?.(address);
          target.pending = before?.pending ?? true;
          target.healthy = before?.healthy ?? false;
          target.lastError = before?.lastError ?? "waiting for a first passing health check";
          byIp.set(ip, target);
          added.push(target);
        }
        if (gone.length === 0 && added.length === 0) return;
        targets = [...targets.filter((t) => !gone.includes(t)), ...added];
        // Gone: no new call; HTTP/2 close lets the streams in flight finish, then the connections close.
        for (const target of gone) target.close();
        for (const target of added) options.onTargetAdded?.(target);
      },
    });
    discoveries.push(discovery);
  }
  let next = 0;
  let retryTokens = retryReserve;
  let successor: Upstream | undefined;
  return {
    service: options.service,
    protocol: options.protocol,
    json: options.json ?? options.protocol === "connect",
    get targets() {
      return targets;
    },
    resolved: () => Promise.all(discoveries.map((d) => d.first)).then(() => {}),
    pick(exclude) {
      if (successor !== undefined) return successor.pick(exclude);
      const list = targets;
      const n = list.length;
      if (n === 1 && !(list[0] as UpstreamTarget).pending) return list[0] as UpstreamTarget;
      const now = Date.now();
      const start = next % Math.max(n, 1);
      next = (start + 1) % Math.max(n, 1);
      let best: UpstreamTarget | undefined;
      // Every address is out: try them anyway rather than fail (Envoy's panic mode), spread over all
      // of them as in rotation, another one than `exclude` first; but never an address that has not
      // passed a health check yet.
      let panicBest: UpstreamTarget | undefined;
      let fallback: UpstreamTarget | undefined;
      for (let i = 0; i < n; i++) {
        const t = list[(start + i) % n] as UpstreamTarget;
        if (t.pending) continue;
        fallback ??= t;
        if (t === exclude) continue;
        if (panicBest === undefined || t.outstanding < panicBest.outstanding) panicBest = t;
        if (!t.healthy || t.ejectedUntil > now) continue;
        if (best === undefined || t.outstanding < best.outstanding) best = t;
      }
      const panic = best ?? panicBest ?? fallback;
      if (panic === undefined) {
        throw new Error(
          n === 0
            ? `no address of ${options.service} is known yet (DNS)`
            : `no address of ${options.service} has passed a health check yet`,
        );
      }
      return panic;
    },
    earnRetry() {
      if (retryTokens < retryReserve) retryTokens += retryPerCall;
    },
    spendRetry() {
      if (retryTokens < 1) return false;
      retryTokens--;
      return true;
    },
    close(replacement) {
      successor = replacement;
      for (const d of discoveries) d.close();
      for (const t of targets) t.close();
    },
  };
}

let systemResolver: HostResolver | undefined;
const defaultResolve: HostResolver = (host) => {
  systemResolver ??= createHostResolver();
  return systemResolver(host);
};
