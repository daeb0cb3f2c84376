import { createHash, timingSafeEqual } from "node:crypto";
import * as http from "node:http";
import * as http2 from "node:http2";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { type DualListener, listenDual } from "./dual-listener.js";

export interface ReadyReport {
  ready: boolean;
  checks: Record<string, boolean>;
}

export interface AdminServerOptions {
  port: number;
  host: string;
  /** `/readyz`: 200 when ready, 503 otherwise, with each check. */
  ready: () => Promise<ReadyReport>;
  /** `/metrics` in the Prometheus text format. */
  metrics?: () => Promise<{ contentType: string; body: string }>;
  /** A bearer token `/metrics` requires (`Authorization: Bearer <token>`); unset: `/metrics` is open. */
  metricsToken?: string;
  /** Connect/gRPC services on the admin port (GatewayService). */
  routes?: (router: ConnectRouter) => void;
  /** Interceptors of those services (who may call them). */
  interceptors?: Interceptor[];
  /** `/.well-known/jwks.json`: the trust bundle (public keys) services may fetch instead of a file. */
  jwks?: () => unknown;
}

export interface AdminServer {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

type Req = http.IncomingMessage | http2.Http2ServerRequest;
type Res = http.ServerResponse | http2.Http2ServerResponse;

const digest = (text: string) => createHash("sha256").update(text).digest();

/** Whether an Authorization header carries `token` (compared in constant time). */
function carriesToken(header: string | undefined, expected: Buffer): boolean {
  const match = /^Bearer +(\S+) *$/i.exec(header ?? "");
  return match !== null && timingSafeEqual(digest(match[1] as string), expected);
}

/** The admin port: `/healthz`, `/readyz`, `/metrics` and the gateway's own API, over HTTP/1.1 and h2c. */
export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const adapter = options.routes ? connectNodeAdapter({ routes: options.routes, interceptors: options.interceptors }) : undefined;
  const json = (res: Res, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    (res as http.ServerResponse).writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(text);
  };
  const metricsToken = options.metricsToken === undefined ? undefined : digest(options.metricsToken);
  const handler = (req: Req, res: Res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method === "GET" && path === "/healthz") return json(res, 200, { status: "ok" });
    if (req.method === "GET" && path === "/readyz") {
      options.ready().then(
        (report) => json(res, report.ready ? 200 : 503, { status: report.ready ? "ready" : "not ready", checks: report.checks }),
        () => json(res, 503, { status: "not ready" }),
      );
      return;
    }
    if (req.method === "GET" && path === "/metrics" && options.metrics) {
      if (metricsToken !== undefined && !carriesToken(req.headers.authorization, metricsToken)) {
        res.setHeader("www-authenticate", 'Bearer realm="metrics"');
        const why = req.headers.authorization === undefined ? "missing" : "wrong";
        return json(res, 401, { status: `${why} metrics token: send "Authorization: Bearer <ADMIN_METRICS_TOKEN>"` });
      }
      options.metrics().then(
        (m) => {
          (res as http.ServerResponse).writeHead(200, { "content-type": m.contentType });
          res.end(m.body);
        },
        () => json(res, 500, { status: "metrics failed" }),
      );
      return;
    }
    if (req.method === "GET" && path === "/.well-known/jwks.json" && options.jwks) return json(res, 200, options.jwks());
    if (adapter) return adapter(req, res);
    json(res, 404, { status: "not found" });
  };
  const h2 = http2.createServer();
  h2.on("request", handler);
  const h1 = http.createServer(handler);
  const listener: DualListener = await listenDual({
    port: options.port,
    host: options.host,
    h2: (socket) => h2.emit("connection", socket),
    h1,
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  const host = listener.address.includes(":") ? `[${listener.address}]` : listener.address;
  return {
    port: listener.port,
    url: `http://${host === "0.0.0.0" ? "127.0.0.1" : host === "[::]" ? "[::1]" : host}:${listener.port}`,
    async close() {
      const closing = listener.close();
      for (const s of sessions) s.close();
      h1.closeAllConnections();
      setTimeout(() => {
        for (const s of sessions) s.destroy();
      }, 1000).unref();
      await closing;
    },
  };
}
