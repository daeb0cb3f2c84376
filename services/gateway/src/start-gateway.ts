import * as http from "node:http";
import { isIP, type Socket } from "node:net";
import {
  ConfigError,
  GATEWAY_SERVICE,
  identityHeaders,
  type Logger,
  platform,
  type ServiceIdentity,
  serviceNameOf,
} from "@portico/kit";
import { type AccessLog, accessLogOn } from "./access-log.js";
import { type AddressAdmissionLimits, checkAddressAdmissionOptions, createAddressAdmission } from "./address-admission.js";
import { createAdminAuthorization } from "./admin-authorization.js";
import { type AdminServer, startAdminServer } from "./admin-server.js";
import { createAuthCache } from "./auth-cache.js";
import { createAuthClient } from "./auth-client.js";
import { endCallSpan } from "./call-tracing.js";
import { createCors } from "./cors.js";
import { createHostResolver, type HostResolver } from "./dns-discovery.js";
import type { Peer } from "./downstream.js";
import { type DualListener, listenDual } from "./dual-listener.js";
import { defaultDnsRefreshMs, type GatewayConfig } from "./gateway-config.js";
import { createGatewayMetrics } from "./gateway-metrics.js";
import { createGatewayService, GatewayService } from "./gateway-service.js";
import { checkH2ServerOptions, H2Error, type H2ServerOptions, type H2Session, serveH2 } from "./h2/index.js";
import { type HealthChecker, startHealthChecker } from "./health-checker.js";
import { createHttp1Downstream, http1Headers } from "./http1-downstream.js";
import { defaultImagePath, type Image, loadImage } from "./load-image.js";
import { createProxy, defaultMaxResponseMessageBytes } from "./proxy.js";
import { createMemoryRateLimiter } from "./rate-limiter.js";
import { createApiDocs } from "./rest/api-docs.js";
import { openApiMethodsOf, renderOpenApi } from "./rest/openapi.js";
import { createRestRoutes } from "./rest/rest-routes.js";
import { createRestStage } from "./rest/rest-stage.js";
import { startRevocationWatcher } from "./revocation-watcher.js";
import { createRouteTable, type RouteTable } from "./route-table.js";
import { createServerReflection } from "./server-reflection.js";
import { createStaticFiles } from "./static-files.js";
import { createTrustedProxies } from "./trusted-proxies.js";
import { createUpstream, type Upstream } from "./upstream.js";

export interface GatewayOptions extends GatewayConfig {
  /** Public port (HTTP/1.1 and h2c, or TLS); 0 = a free port. */
  port?: number;
  /** Public address (default 0.0.0.0). */
  host?: string;
  /** Admin port (`/healthz`, `/readyz`, `/metrics`, GatewayService); 0 = a free port. */
  adminPort?: number;
  /** Admin address (default 127.0.0.1: the admin port shows internal addresses and is not for the public). */
  adminHost?: string;
  /**
   * The bearer token `/metrics` on the admin port requires (`ADMIN_METRICS_TOKEN`), at least 16
   * characters; unset, `/metrics` is open. Required when `adminHost` is not a loopback address.
   */
  metricsToken?: string;
  /** The buf image (FileDescriptorSet with imports) the routes come from (default `gen/portico.binpb`). */
  imagePath?: string;
  /**
   * The gateway's key pair and the trust bundle (service `gateway`): it signs the user assertions
   * (`x-portico-identity`, addressed to each backend) and its own service token for its calls to auth.
   */
  identity: ServiceIdentity;
  logger: Logger;
  /** PEM certificate and key: serve TLS with ALPN h2 and http/1.1. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** PEM certificates trusted for `https://` upstreams instead of Node's bundled roots (a private CA). */
  upstreamCa?: string | Buffer;
  /** The built web app, served at `/` with an index.html fallback; ignored when the directory is missing. */
  webRoot?: string;
  /** The service whose Authenticate and WatchRevocations the gateway calls (default portico.auth.v1.AuthService). */
  authService?: string;
  /** How long calls in flight may take to finish on close (ms, default 10 000). */
  shutdownGraceMs?: number;
  /** Shared rate-limit buckets in Redis (`redis://…`); in-process when unset. */
  redisUrl?: string;
  /** Prefix of the Redis rate-limit keys (default "portico:rl:"). */
  rateLimitKeyPrefix?: string;
  /** One access-log line per call: true (default) on `logger`, false for none, or another access log (`createAccessLogFile`, `accessLogOn`). */
  accessLog?: boolean | AccessLog;
  /** Between two rounds of active health checks (ms, default 5000). */
  healthCheckIntervalMs?: number;
  /** A connection that sends no complete request headers within this time is dropped (ms, default 10 000). */
  headersTimeoutMs?: number;
  /** An HTTP/2 connection idle this long is closed with GOAWAY (ms, default 120 000). */
  idleTimeoutMs?: number;
}

export interface Gateway {
  /** Public URL (`http://127.0.0.1:<port>` when bound to all addresses). */
  readonly url: string;
  readonly port: number;
  readonly adminUrl: string;
  readonly adminPort: number;
  /** Applies a new config (and re-reads the image): new routes and policies, calls in flight unaffected. */
  reload(config: GatewayConfig): void;
  /** GOAWAY to every client, lets calls in flight finish within the grace period, then closes. */
  close(): Promise<void>;
}

/** The gateway's defaults where the config sets nothing (also the OpenAPI document's limits). */
export const defaults = {
  defaultTimeoutMs: 30_000,
  defaultMaxRequestBytes: 4 * 1024 * 1024,
  authCacheTtlMs: 60_000,
  authDegradedTtlMs: 5_000,
  authTimeoutMs: 2_000,
};

/** The OpenAPI document of a route table's routed methods, rendered on first request. */
function lazyOpenApi(table: RouteTable): () => Buffer {
  let document: Buffer | undefined;
  return () => {
    document ??= Buffer.from(
      JSON.stringify(
        renderOpenApi({
          methods: openApiMethodsOf(table.all.map((r) => ({ ...r, routed: table.get(r.path) !== undefined }))),
        }),
      ),
    );
    return document;
  };
}

function peerAddress(address: string | undefined): string {
  if (address === undefined) return "";
  return address.startsWith("::ffff:") ? address.slice(7) : address;
}

/**
 * The public port's HTTP/2 session limits and per-address budgets of a config (its `http2`, with
 * the start options' timeouts), checked: a bad one throws, naming it, before anything uses it.
 */
function publicLimits(
  config: GatewayConfig,
  options: GatewayOptions,
): { session: Omit<H2ServerOptions, "onStream">; admission: AddressAdmissionLimits } {
  const { maxConcurrentStreams, abuseBudget, maxConnectionsPerAddress, ...limits } = config.http2 ?? {};
  const session: Omit<H2ServerOptions, "onStream"> = {
    settings: { maxConcurrentStreams, initialWindowSize: 1024 * 1024, maxHeaderListSize: 64 * 1024 },
    connectionWindowSize: 8 * 1024 * 1024,
    headersTimeoutMs: options.headersTimeoutMs ?? 10_000,
    idleTimeoutMs: options.idleTimeoutMs ?? 120_000,
    ...limits,
  };
  checkH2ServerOptions(session);
  const admission: AddressAdmissionLimits = {
    abuseBudget: abuseBudget ?? { burst: 10, perSecond: 1 },
    maxConnectionsPerAddress: maxConnectionsPerAddress ?? 4096,
    holdMs: session.headersTimeoutMs ?? 10_000,
  };
  checkAddressAdmissionOptions(admission);
  return { session, admission };
}

function validate(options: GatewayOptions): void {
  if (options.identity?.service !== GATEWAY_SERVICE) {
    throw new Error(
      `startGateway: identity must be the gateway's (service "${GATEWAY_SERVICE}"), not ${options.identity?.service}`,
    );
  }
  if (options.tls && (!options.tls.cert || !options.tls.key)) {
    throw new Error("startGateway: tls needs both cert and key");
  }
  const token = options.metricsToken;
  if (token !== undefined && (token.length < 16 || /\s/.test(token))) {
    throw new ConfigError("ADMIN_METRICS_TOKEN must be at least 16 characters without spaces (e.g. `openssl rand -hex 32`)");
  }
  const adminHost = options.adminHost ?? defaultAdminHost;
  if (token === undefined && !isLoopback(adminHost)) {
    throw new ConfigError(
      `ADMIN_HOST ${adminHost} is not a loopback address: set ADMIN_METRICS_TOKEN so /metrics is not open to the network`,
    );
  }
}

/** Where the admin port listens unless `adminHost` says otherwise. */
const defaultAdminHost = "127.0.0.1";

/** Whether `host` names this machine only: 127.0.0.0/8, ::1 (or IPv4-mapped loopback), `localhost`. */
function isLoopback(host: string): boolean {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (bare === "localhost" || bare === "::1") return true;
  const v4 = bare.toLowerCase().startsWith("::ffff:") ? bare.slice(7) : bare;
  return isIP(v4) === 4 && v4.startsWith("127.");
}

/** Starts the public gateway and its admin server. */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  validate(options);
  const logger = options.logger;
  const imagePath = options.imagePath ?? defaultImagePath();
  const authService = options.authService ?? "portico.auth.v1.AuthService";

  const build = (config: GatewayConfig, image: Image, before?: Map<string, Upstream>) => {
    // Validated first: a bad entry fails before anything is created.
    const limits = publicLimits(config, options);
    const trustedProxies = createTrustedProxies(config.trustedProxies ?? [], "startGateway: trustedProxies");
    if (!config.upstreams[authService]) {
      throw new Error(`startGateway: upstreams has no entry for the auth service ${authService}`);
    }
    const upstreams = new Map<string, Upstream>();
    const resolve: HostResolver | undefined = config.dns?.servers ? createHostResolver(config.dns.servers) : undefined;
    for (const [service, upstream] of Object.entries(config.upstreams)) {
      const created = createUpstream({
        service,
        ...upstream,
        ca: options.upstreamCa,
        resolve,
        dnsRefreshMs: config.dns?.refreshMs ?? defaultDnsRefreshMs,
        logger,
        // An address DNS found is checked at once: it takes calls from its first passing check.
        onTargetAdded: (target) => {
          if (healthChecker === undefined) return;
          const check = healthChecker.check(created, target);
          firstChecks.add(check);
          void check.finally(() => firstChecks.delete(check));
        },
        previous: (address) => before?.get(service)?.targets.find((t) => t.address === address),
      });
      upstreams.set(service, created);
    }
    const table = createRouteTable({
      registry: image.registry,
      upstreams,
      defaultTimeoutMs: config.defaultTimeoutMs ?? defaults.defaultTimeoutMs,
      defaultMaxRequestBytes: config.defaultMaxRequestBytes ?? defaults.defaultMaxRequestBytes,
    });
    for (const service of upstreams.keys()) {
      if (!table.all.some((r) => r.service.typeName === service)) {
        logger.warn({ upstream: service }, "upstream configured for a service that is not in the image");
      }
    }
    const reflection = createServerReflection(image, table);
    const cors = createCors(config.corsOrigins);
    const rest = createRestRoutes(table);
    const openApi = lazyOpenApi(table);
    return { upstreams, table, config, reflection, cors, trustedProxies, rest, openApi, limits };
  };

  // Set once the health checker runs (after the first build): addresses DNS finds are checked by it.
  let healthChecker: HealthChecker | undefined;
  const firstChecks = new Set<Promise<void>>();
  let state = build(options, loadImage(imagePath));
  // Per client address: connections closed for abuse spend a budget; then the address's new ones
  // are held unread. Its budgets come from the config (and a reload) like the HTTP/2 limits.
  const admission = createAddressAdmission({
    ...state.limits.admission,
    exempt: (address) => state.trustedProxies.has(address),
  });

  const signer = options.identity.signer;
  const authAudience = serviceNameOf(authService);
  const authClient = createAuthClient({
    // The routed auth upstream: health-checked with the others, and replaced on reload.
    upstream: () => state.upstreams.get(authService) as Upstream,
    timeoutMs: options.authTimeoutMs ?? defaults.authTimeoutMs,
    callHeaders: () => ({ [identityHeaders.service]: signer.serviceToken(authAudience) }),
  });
  const authCache = createAuthCache({
    verify: (token) => authClient.verify(token),
    signer,
    ttlMs: options.authCacheTtlMs ?? defaults.authCacheTtlMs,
    degradedTtlMs: options.authDegradedTtlMs ?? defaults.authDegradedTtlMs,
    claimHeaders: options.identityClaimHeaders === true,
  });
  const watcher = startRevocationWatcher({ client: authClient, cache: authCache, logger });

  const rateLimiter = options.redisUrl
    ? (await import("./redis-rate-limiter.js")).createRedisRateLimiter({
        url: options.redisUrl,
        failure: options.rateLimitFailure ?? "open",
        logger,
        keyPrefix: options.rateLimitKeyPrefix,
      })
    : createMemoryRateLimiter();
  // Buckets shared through Redis start when Redis answers (or, if it does not, in the failure mode).
  await rateLimiter.ready(2000);

  const metrics = createGatewayMetrics({
    auth: authCache,
    upstreams: () => state.upstreams.values(),
    inFlight: () => proxy.inFlight,
    accessLog:
      options.accessLog === false
        ? undefined
        : typeof options.accessLog === "function"
          ? options.accessLog
          : accessLogOn(logger.child({ log: "access" })),
  });
  const proxy = createProxy({
    rateLimiter,
    routes: () => state.table,
    auth: authCache,
    anonymousHeaders: (audience) => ({ [identityHeaders.service]: signer.serviceToken(audience) }),
    trustedProxies: () => state.trustedProxies,
    cors: () => state.cors,
    reflection: () => state.reflection,
    logger,
    rest: createRestStage({
      routes: () => state.rest,
      docs: createApiDocs({ document: () => state.openApi() }),
      useProtoNames: () => state.config.restUseProtoNames === true,
    }),
    staticFiles: options.webRoot ? createStaticFiles(options.webRoot) : undefined,
    maxResponseMessageBytes: () => state.config.maxResponseMessageBytes ?? defaultMaxResponseMessageBytes,
    onCallEnd: (record) => {
      metrics.record(record);
      endCallSpan(record);
    },
  });
  healthChecker = startHealthChecker({
    upstreams: () => state.upstreams.values(),
    intervalMs: options.healthCheckIntervalMs ?? 5000,
    timeoutMs: 1000,
    headers: () => ({}),
    logger,
  });
  // Upstreams given by host name: resolved and their addresses checked once before the public port
  // opens (2 s at most; DNS that does not answer yet is retried in the background).
  const discovered = Promise.all([...state.upstreams.values()].map((u) => u.resolved())).then(() => Promise.all(firstChecks));
  await Promise.race([discovered, new Promise((r) => setTimeout(r, 2000).unref())]);
  const gatewayService = createGatewayService({ routes: () => state.table, upstreams: () => state.upstreams.values() });

  // Declared before the servers that read it: a connection may arrive as soon as the public port
  // listens, while the admin server is still starting.
  let closing: Promise<void> | undefined;

  // Public servers: HTTP/2 streams go straight to the proxy; HTTP/1.1 requests through an adapter.
  const sessions = new Set<H2Session>();
  const h2 = (socket: Socket) => {
    const peer: Peer = {
      address: peerAddress(socket.remoteAddress),
      encrypted: "encrypted" in socket && socket.encrypted === true,
    };
    const session = serveH2(socket, {
      // The limits of the config current when the connection came: a reload changes them for new connections only.
      ...state.limits.session,
      onStream: (stream, headers) => {
        try {
          proxy.handle(stream, headers, peer);
        } catch (error) {
          // A bug must not take the process (and every other call) down.
          logger.error({ err: error, path: headers[":path"] }, "gateway failed a call");
          if (!stream.destroyed) stream.close(H2Error.internalError);
        }
      },
    });
    sessions.add(session);
    session.on("close", () => {
      sessions.delete(session);
      if (session.abuse !== undefined) admission.strike(peer.address);
    });
    session.on("error", () => {});
    if (closing !== undefined) session.close();
  };
  const h1 = http.createServer({
    maxHeaderSize: 64 * 1024,
    headersTimeout: options.headersTimeoutMs ?? 10_000,
    requestTimeout: 0,
    keepAliveTimeout: 30_000,
    connectionsCheckingInterval: 1000,
  });
  h1.on("request", (req, res) => {
    const socket = req.socket;
    try {
      proxy.handle(createHttp1Downstream(req, res), http1Headers(req), {
        address: peerAddress(socket.remoteAddress),
        encrypted: "encrypted" in socket && socket.encrypted === true,
      });
    } catch (error) {
      logger.error({ err: error, path: req.url }, "gateway failed a call");
      res.destroy();
    }
  });
  h1.on("clientError", (error: NodeJS.ErrnoException, socket) => {
    const status =
      error.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? "408 Request Timeout"
        : error.code === "HPE_HEADER_OVERFLOW"
          ? "431 Request Header Fields Too Large"
          : "400 Bad Request";
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    else socket.destroy();
  });

  let publicListener: DualListener | undefined;
  let admin: AdminServer | undefined;
  try {
    publicListener = await listenDual({
      port: options.port ?? platform.gateway.port,
      host: options.host ?? "0.0.0.0",
      h2,
      h1,
      tls: options.tls,
      firstBytesTimeoutMs: options.headersTimeoutMs ?? 10_000,
      admission,
    });
    admin = await startAdminServer({
      port: options.adminPort ?? platform.gateway.adminPort,
      host: options.adminHost ?? defaultAdminHost,
      ready: async () => {
        const authUp = await authClient.healthy(1000);
        const checks = { routes: state.table.all.length > 0, auth: authUp };
        return { ready: checks.routes && checks.auth && !closing, checks };
      },
      metrics: () => metrics.text(),
      metricsToken: options.metricsToken,
      routes: (router) => router.service(GatewayService, gatewayService),
      interceptors: [createAdminAuthorization(authCache)],
      jwks: () => options.identity.trust.jwks(),
    });
  } catch (error) {
    await publicListener?.close();
    healthChecker.close();
    watcher.close();
    authClient.close();
    authCache.close();
    await rateLimiter.close();
    for (const u of state.upstreams.values()) u.close();
    throw error;
  }
  const listener = publicListener;
  const adminServer = admin;
  const host = (address: string) =>
    address === "0.0.0.0" ? "127.0.0.1" : address === "::" ? "[::1]" : address.includes(":") ? `[${address}]` : address;
  const scheme = options.tls ? "https" : "http";
  logger.info({ port: listener.port, adminPort: adminServer.port, routes: state.table.all.length }, "gateway listening");

  return {
    url: `${scheme}://${host(listener.address)}:${listener.port}`,
    port: listener.port,
    adminUrl: adminServer.url,
    adminPort: adminServer.port,
    reload(config) {
      const previous = state;
      state = build(config, loadImage(imagePath), previous.upstreams);
      admission.reconfigure(state.limits.admission);
      // Old sessions finish their streams, then close (HTTP/2 close is graceful); a call routed
      // before the reload that has not picked an address yet gets one of the new upstream's.
      for (const [service, u] of previous.upstreams) u.close(state.upstreams.get(service));
    },
    close() {
      closing ??= (async () => {
        const grace = options.shutdownGraceMs ?? 10_000;
        const stopped = listener.close();
        const deadline = Date.now() + grace;
        const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
        // GOAWAY: HTTP/2 sessions close by themselves once their streams are done.
        const sessionsClosed = Promise.all(
          [...sessions].map((s) => (s.closed ? undefined : new Promise((r) => s.once("close", r)))),
        );
        for (const s of sessions) s.close();
        h1.closeIdleConnections();
        while (proxy.inFlight > 0 && Date.now() < deadline) await sleep(25);
        // The last responses may still be flushing.
        await Promise.race([sessionsClosed, sleep(Math.max(0, Math.min(1000, deadline - Date.now())))]);
        h1.closeIdleConnections();
        for (const s of sessions) s.destroy();
        h1.closeAllConnections();
        // What is still open now (a peer that stopped reading, a socket still being sniffed) is cut.
        listener.destroyConnections();
        await stopped;
        await adminServer.close();
        healthChecker.close();
        watcher.close();
        authClient.close();
        authCache.close();
        await rateLimiter.close();
        for (const u of state.upstreams.values()) u.close();
      })();
      return closing;
    },
  };
}
