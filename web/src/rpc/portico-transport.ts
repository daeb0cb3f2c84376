import { Code, ConnectError, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import type { PorticoProtocol } from "../config/web-config.js";
import type { Session } from "../session/session.js";

export interface PorticoTransportOptions {
  /** The gateway's origin; "" for the page's own origin. */
  readonly baseUrl: string;
  readonly protocol: PorticoProtocol;
  /** When given, calls carry `Authorization: Bearer <access token>` and renew it once on `unauthenticated`. */
  readonly session?: Session;
  /** For tests and non-browser hosts; defaults to the global fetch. */
  readonly fetch?: typeof globalThis.fetch;
}

/**
 * The transport every generated hook uses: Connect (JSON) by default, gRPC-Web on request, both
 * with the browser's cookies included so the auth service can read and set `portico_refresh`.
 */
export function createPorticoTransport(options: PorticoTransportOptions): Transport {
  if (options.protocol !== "connect" && options.protocol !== "grpc-web") {
    throw new Error(`createPorticoTransport: protocol "${String(options.protocol)}" is not "connect" or "grpc-web"`);
  }
  const baseFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const fetchWithCookies: typeof globalThis.fetch = (input, init) => baseFetch(input, { ...init, credentials: "include" });
  const baseUrl = options.baseUrl || (typeof location === "undefined" ? "" : location.origin);
  const interceptors = options.session ? [bearerInterceptor(options.session)] : [];
  const common = { baseUrl, interceptors, fetch: fetchWithCookies };
  return options.protocol === "grpc-web" ? createGrpcWebTransport(common) : createConnectTransport(common);
}

/**
 * Adds the in-memory access token to each call. A unary call answered `unauthenticated` renews the
 * token through the refresh cookie once and is sent again; if that fails too, the session ends.
 * (A server stream cannot be replayed here: its view restarts it, see useGreetStream.)
 */
export function bearerInterceptor(session: Session): Interceptor {
  return (next) => async (req) => {
    const token = await session.accessToken();
    if (token !== undefined) req.header.set("Authorization", `Bearer ${token}`);
    try {
      return await next(req);
    } catch (err) {
      if (token === undefined || req.stream || ConnectError.from(err).code !== Code.Unauthenticated) throw err;
      if (!(await session.refresh())) throw err;
      const renewed = await session.accessToken();
      if (renewed === undefined) throw err;
      req.header.set("Authorization", `Bearer ${renewed}`);
      try {
        return await next(req);
      } catch (again) {
        if (ConnectError.from(again).code === Code.Unauthenticated) {
          session.expire("The server no longer accepts your session. Please log in again.");
        }
        throw again;
      }
    }
  };
}
