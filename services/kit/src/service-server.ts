import * as http2 from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import { ConnectError, type ConnectRouter, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createHealthStatus, type HealthStatus } from "./health-service.js";
import { createIdentityInterceptor } from "./identity-interceptor.js";
import type { Logger } from "./logger.js";
import type { ServiceIdentity } from "./service-identity.js";
import { routeStreams, type StreamHandler } from "./stream-handlers.js";
import { tracingServerInterceptor } from "./tracing.js";

/**
 * The receive window of each HTTP/2 connection (all its streams together). Node's default is 64 KiB
 * per connection, so a caller that sends many large requests over one connection (the gateway's
 * pooled connection, a service client) stalls on WINDOW_UPDATEs from this server: measured, 16
 * concurrent 64 KiB calls on one connection cost the greeter 20 % more CPU per call than on 16
 * connections, and 12 % less with this window (bench/README.md, session 15).
 * Node's `maxSessionMemory` still bounds what a connection may park here.
 */
export const connectionWindowBytes = 1024 * 1024;

/**
 * The receive window of each stream, in the server's SETTINGS. Node's default is 65,535 bytes, so a
 * request of 64 KiB and more (a 64 KiB payload with its envelope is 65,545 bytes) waits for the
 * server's WINDOW_UPDATE before its last bytes may go: one more round trip, read and write per call on
 * both ends. So every stream may take the connection's whole window; the connection window and
 * node's `maxSessionMemory` still bound what one connection parks here.
 */
export const streamWindowBytes = connectionWindowBytes;

export interface ServiceServerOptions {
  /** Name used in logs. */
  name: string;
  port: number;
  /** Internal services bind loopback by default. */
  host?: string;
  routes: (router: ConnectRouter) => void;
  logger: Logger;
  /**
   * The service's keys and trust bundle: every call is checked against its method's policy
   * (createCallGuard). Required: a service without it would trust nobody and guard nothing.
   */
  identity: Pick<ServiceIdentity, "guard">;
  interceptors?: Interceptor[];
  /** How long calls in flight may take to finish on close (default 10 s). */
  shutdownGraceMs?: number;
  /**
   * Extra plain HTTP endpoints by exact path (query string ignored), e.g.
   * `{ "/.well-known/jwks.json": (req, res) => ... }`. /healthz and /readyz cannot be replaced.
   * A handler that returns `false` (without touching `res`) passes the request on to the RPC routes,
   * so a hot RPC may get a hand-written fast path for the requests it understands.
   */
  httpHandlers?: Record<string, (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => unknown>;
  /**
   * Handlers on node's raw HTTP/2 stream API by exact path, ahead of everything else (httpHandlers,
   * the RPC routes): for an RPC hot enough that node's compatibility objects show in its profile.
   * One that returns `false` passes the request on untouched; see stream-handlers.ts. Such a handler
   * bypasses the interceptors, so it does its own policy check (`identity.guard`).
   */
  streamHandlers?: Record<string, StreamHandler>;
}

export interface ServiceServer {
  readonly port: number;
  /** `http://host:port`, for clients. */
  readonly url: string;
  readonly health: HealthStatus;
  /** Stops accepting, lets calls in flight finish within the grace period, then closes. */
  close(): Promise<void>;
}

/**
 * An h2c server for Connect, gRPC and gRPC-Web with `grpc.health.v1.Health`, `GET /healthz`
 * and `GET /readyz`, the identity interceptor and graceful shutdown.
 */
export async function startServiceServer(options: ServiceServerOptions): Promise<ServiceServer> {
  const { logger } = options;
  const health = createHealthStatus();
  const logErrors: Interceptor = (next) => async (req) => {
    try {
      return await next(req);
    } catch (error) {
      if (!(error instanceof ConnectError)) logger.error({ err: error, method: req.url }, "handler failed");
      throw error;
    }
  };
  // The call's span first (when tracing is on), so refused calls and the handler's own work are in it.
  const interceptors = [
    tracingServerInterceptor,
    logErrors,
    createIdentityInterceptor(options.identity.guard),
    ...(options.interceptors ?? []),
  ];
  const adapter = connectNodeAdapter({
    routes(router) {
      options.routes(router);
      health.register(router);
    },
    interceptors,
  });
  const server = http2.createServer({ settings: { initialWindowSize: streamWindowBytes } }, (req, res) => {
    if (req.method === "GET" && (req.url === "/healthz" || req.url === "/readyz")) {
      const ok = req.url === "/healthz" || health.get("") === true;
      res.writeHead(ok ? 200 : 503, { "content-type": "application/json" });
      res.end(JSON.stringify({ status: ok ? "ok" : "not ready" }));
      return;
    }
    const handlers = options.httpHandlers;
    if (handlers) {
      const path = (req.url ?? "").split("?")[0] ?? "";
      if (Object.hasOwn(handlers, path) && handlers[path]?.(req, res) !== false) return;
    }
    adapter(req, res);
  });
  if (options.streamHandlers) routeStreams(server, options.streamHandlers);
  const sessions = new Set<http2.ServerHttp2Session>();
  // session.destroy() does not always release the connection on Node 20 (a stream the client
  // stopped reading keeps it open and server.close() never completes), so sockets are tracked too.
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.on("session", (session) => {
    sessions.add(session);
    session.setLocalWindowSize(connectionWindowBytes);
    session.on("close", () => sessions.delete(session));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port, address } = server.address() as AddressInfo;
  const host = address.includes(":") ? `[${address}]` : address;
  logger.info({ port, address }, `${options.name} listening`);
  let closing: Promise<void> | undefined;
  return {
    port,
    url: `http://${host}:${port}`,
    health,
    close() {
      closing ??= new Promise<void>((resolve) => {
        health.set("", false);
        const timer = setTimeout(() => {
          for (const session of sessions) session.destroy();
          for (const socket of sockets) socket.destroy();
        }, options.shutdownGraceMs ?? 10_000);
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        for (const session of sessions) session.close();
      });
      return closing;
    },
  };
}
