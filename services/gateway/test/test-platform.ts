// Test helper (not a test): the real auth, greeter and gateway on free ports, plus clients.
import { randomBytes } from "node:crypto";
import * as http2 from "node:http2";
import { type Client, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { type AuthOptions, type AuthServer, startAuth } from "@portico/auth";
import { AuthService } from "@portico/gen/portico/auth/v1/auth_pb.js";
import { GreeterService } from "@portico/gen/portico/greeter/v1/greeter_pb.js";
import { type GreeterServer, startGreeter } from "@portico/greeter";
import { createLogger, type Database, freePort } from "@portico/kit";
import { createTestKeys, openTestDatabase, type TestKeys } from "@portico/kit/testing";
import type { GatewayConfig } from "../src/gateway-config.js";

export { freePort };

import { type Gateway, type GatewayOptions, startGateway } from "../src/start-gateway.js";

export interface TestPlatform {
  auth: AuthServer;
  greeter: GreeterServer;
  gateway: Gateway;
  /** Every service's key pair and the trust bundle; `keys.identity("gateway")` for another gateway. */
  keys: TestKeys;
  /** The config the gateway was started with (reload with a changed copy). */
  config: GatewayConfig;
  transports: { connect: Transport; grpc: Transport; grpcWeb: Transport; connectHttp1: Transport };
  authClient: Client<typeof AuthService>;
  greeterClient(transport?: Transport): Client<typeof GreeterService>;
  /** Signs up a fresh user through the gateway and answers its access token and id. */
  signUp(name?: string): Promise<{ token: string; userId: string; refreshToken: string }>;
  /** An access token of a fresh user with these roles (set in the auth database, then refreshed). */
  tokenWithRoles(roles: string[]): Promise<string>;
  /** An access token with the `gateway.admin` role GatewayService needs (one per platform). */
  adminToken(): Promise<string>;
  /** A raw HTTP/2 request to the gateway. */
  raw(request: RawRequest): Promise<RawResponse>;
  /**
   * Another gateway in front of this platform's services, on free ports, silent: `options` are
   * added to the platform's config (`upstreams` entries replace the platform's for those services).
   * Closed with the platform.
   */
  startGateway(options?: Partial<GatewayOptions>): Promise<Gateway>;
  close(): Promise<void>;
}

export interface RawRequest {
  path: string;
  method?: string;
  headers?: http2.OutgoingHttpHeaders;
  body?: Uint8Array | string;
  /** Default: the gateway's public URL. */
  url?: string;
}

export interface RawResponse {
  status: number;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
}

/**
 * A silent gateway on free ports with nothing behind it (the auth service's address is a dead
 * port unless `options.upstreams` names one): for what the gateway answers itself.
 */
export async function startLoneGateway(options: Partial<GatewayOptions> = {}): Promise<Gateway> {
  const deadAuth = `http://127.0.0.1:${await freePort()}`;
  return startGateway({
    port: 0,
    host: "127.0.0.1",
    adminPort: 0,
    identity: createTestKeys().identity("gateway"),
    logger: createLogger({ service: "gateway", level: "silent" }),
    accessLog: false,
    shutdownGraceMs: 500,
    ...options,
    upstreams: { "portico.auth.v1.AuthService": { targets: [deadAuth], protocol: "connect" }, ...options.upstreams },
  });
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** One HTTP/2 request with a fresh session; resolves with status, headers, trailers and body. */
export function rawRequest(url: string, request: RawRequest): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url);
    session.on("error", reject);
    const stream = session.request({
      ":method": request.method ?? "POST",
      ":path": request.path,
      ...request.headers,
    });
    let status = 0;
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      headers = h;
    });
    stream.on("trailers", (t) => {
      trailers = t;
    });
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("error", reject);
    stream.on("close", () => {
      session.close();
      resolve({ status, headers, trailers, body: Buffer.concat(chunks) });
    });
    stream.end(request.body);
  });
}

export async function startTestPlatform(
  label: string,
  overrides: Partial<GatewayOptions> = {},
  authOverrides: Pick<AuthOptions, "loginLimits"> = {},
): Promise<TestPlatform & { authDb: Database; greeterDb: Database }> {
  const keys = createTestKeys();
  const silent = (service: string) => createLogger({ service, level: "silent" });
  const authDb = await openTestDatabase(`${label}_auth`);
  const greeterDb = await openTestDatabase(`${label}_greeter`);
  const auth = await startAuth({
    port: 0,
    db: authDb,
    logger: silent("auth"),
    identity: keys.identity("auth"),
    revocationPollMs: 50,
    shutdownGraceMs: 1000,
    ...authOverrides,
    loginLimits: { signUps: 10_000, ...authOverrides.loginLimits },
  });
  const greeter = await startGreeter({ port: 0, db: greeterDb, logger: silent("greeter"), identity: keys.identity("greeter") });
  const config: GatewayConfig = {
    upstreams: {
      "portico.auth.v1.AuthService": { targets: [auth.url], protocol: "connect" },
      "portico.greeter.v1.GreeterService": { targets: [greeter.url], protocol: "connect" },
    },
    ...overrides,
  };
  const gateway = await startGateway({
    port: 0,
    adminPort: 0,
    host: "127.0.0.1",
    identity: keys.identity("gateway"),
    logger: silent("gateway"),
    shutdownGraceMs: 1000,
    ...overrides,
    ...config,
  });
  const transports = {
    connect: createConnectTransport({ baseUrl: gateway.url, httpVersion: "2" }),
    grpc: createGrpcTransport({ baseUrl: gateway.url }),
    grpcWeb: createGrpcWebTransport({ baseUrl: gateway.url, httpVersion: "2" }),
    connectHttp1: createConnectTransport({ baseUrl: gateway.url, httpVersion: "1.1" }),
  };
  const authClient = createClient(AuthService, transports.connect);
  const extraGateways: Gateway[] = [];
  let n = 0;
  let admin: Promise<string> | undefined;
  const signUp = async (name = "user") => {
    n++;
    const res = await authClient.signUp({
      email: `${name}-${n}-${randomBytes(3).toString("hex")}@example.com`,
      password: "correct horse battery staple",
      displayName: name,
    });
    return {
      token: res.tokens?.accessToken ?? "",
      refreshToken: res.tokens?.refreshToken ?? "",
      userId: res.user?.id ?? "",
    };
  };
  const tokenWithRoles = async (roles: string[]) => {
    const user = await signUp("roles");
    await authDb.query("update users set roles = $2 where id = $1", [user.userId, roles]);
    // The change voids the user's tokens; a refresh carries the roles.
    const res = await authClient.refresh({ refreshToken: user.refreshToken });
    return res.tokens?.accessToken ?? "";
  };
  return {
    auth,
    greeter,
    gateway,
    keys,
    config,
    authDb,
    greeterDb,
    transports,
    authClient,
    greeterClient: (transport = transports.connect) => createClient(GreeterService, transport),
    signUp,
    tokenWithRoles,
    adminToken: () => {
      admin ??= tokenWithRoles(["gateway.admin"]);
      return admin;
    },
    raw: (request) => rawRequest(request.url ?? gateway.url, request),
    async startGateway(options = {}) {
      const extra = await startGateway({
        port: 0,
        adminPort: 0,
        host: "127.0.0.1",
        identity: keys.identity("gateway"),
        logger: silent("gateway"),
        shutdownGraceMs: 500,
        ...config,
        ...options,
        upstreams: { ...config.upstreams, ...options.upstreams },
      });
      extraGateways.push(extra);
      return extra;
    },
    async close() {
      for (const extra of extraGateways.splice(0)) await extra.close().catch(() => {});
      await gateway.close();
      await greeter.close();
      await auth.close();
      await greeterDb.close();
      await authDb.close();
    },
  };
}
