import { type Client, Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { compressionGzip, createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { AuthService, type WatchRevocationsResponse } from "@portico/gen/portico/auth/v1/auth_pb.js";
import { createLogger, type Database, type Identity, identityHeaders } from "@portico/kit";
import { createTestKeys, openTestDatabase, type TestKeys } from "@portico/kit/testing";
import { afterAll, beforeAll, expect } from "vitest";
import { type AuthOptions, type AuthServer, startAuth } from "../src/start-auth.js";

/** A running auth service on a fresh database, with clients, for tests. */
export interface TestAuth {
  auth: AuthServer;
  db: Database;
  /** Every service's keys and the trust bundle the auth service trusts. */
  keys: TestKeys;
  /** Connect client with no identity, as an anonymous caller through the gateway. */
  client: Client<typeof AuthService>;
  /** A client whose calls carry the gateway's assertion of `identity` for auth, and optional extra headers. */
  as(identity: Omit<Identity, "clientAddress">, headers?: Record<string, string>): Client<typeof AuthService>;
  /** A client whose calls carry `service`'s own token for auth. */
  asService(service: string): Client<typeof AuthService>;
  /** The gateway's client: its service token on every call (Authenticate, WatchRevocations, GetJwks answer only it). */
  gateway: Client<typeof AuthService>;
  /** The gateway's service token header for auth, for raw requests. */
  gatewayHeaders(): Record<string, string>;
  /** A client sending `headers` on every call (a function is asked again for each call). */
  withHeaders(headers: Record<string, string> | (() => Record<string, string>)): Client<typeof AuthService>;
  /** Restarts the service on the same database and port. */
  restart(overrides?: Partial<AuthOptions>): Promise<void>;
  close(): Promise<void>;
}

export const STRONG_PASSWORD = "correct horse battery staple";

export async function startTestAuth(label: string, overrides: Partial<AuthOptions> = {}): Promise<TestAuth> {
  const db = await openTestDatabase(label);
  const keys = createTestKeys();
  const logger = createLogger({ service: "auth-test", level: "silent" });
  const options = (extra: Partial<AuthOptions>): AuthOptions => ({
    port: 0,
    db,
    logger,
    identity: keys.identity("auth"),
    revocationPollMs: 50,
    loginLimits: { signUps: 10_000 },
    shutdownGraceMs: 1_000,
    ...overrides,
    ...extra,
  });
  const holder = { auth: await startAuth(options({})) };
  const transport = (interceptors: Interceptor[] = []) =>
    createConnectTransport({ baseUrl: holder.auth.url, httpVersion: "2", interceptors });
  const headerInterceptor =
    (headers: () => Record<string, string>): Interceptor =>
    (next) =>
    (req) => {
      for (const [k, v] of Object.entries(headers())) req.header.set(k, v);
      return next(req);
    };
  const asService = (service: string) => {
    const signer = keys.identity(service).signer;
    return createClient(
      AuthService,
      transport([headerInterceptor(() => ({ [identityHeaders.service]: signer.serviceToken("auth") }))]),
    );
  };
  const gatewaySigner = keys.identity("gateway").signer;
  return {
    get auth() {
      return holder.auth;
    },
    db,
    keys,
    client: createClient(AuthService, transport()),
    as: (identity, headers = {}) =>
      createClient(
        AuthService,
        transport([headerInterceptor(() => ({ ...headers, [identityHeaders.assertion]: keys.assertion(identity, "auth") }))]),
      ),
    asService,
    gateway: asService("gateway"),
    gatewayHeaders: () => ({ [identityHeaders.service]: gatewaySigner.serviceToken("auth") }),
    withHeaders: (headers) =>
      createClient(AuthService, transport([headerInterceptor(typeof headers === "function" ? headers : () => headers)])),
    async restart(extra = {}) {
      await holder.auth.close();
      holder.auth = await startAuth(options({ port: holder.auth.port, ...extra }));
    },
    async close() {
      await holder.auth.close();
      await db.close();
    },
  };
}

/** A gRPC client straight to the auth port, sending `headers` (e.g. a service token) on every call. */
export function grpcClient(url: string, headers: () => Record<string, string> = () => ({})): Client<typeof AuthService> {
  return createClient(
    AuthService,
    createGrpcTransport({
      baseUrl: url,
      interceptors: [
        (next) => (req) => {
          for (const [k, v] of Object.entries(headers())) req.header.set(k, v);
          return next(req);
        },
      ],
    }),
  );
}

let counter = 0;
/** A fresh, valid email address. */
export function uniqueEmail(prefix = "user"): string {
  return `${prefix}.${process.pid}.${Date.now()}.${counter++}@example.com`;
}

/** The Connect code a call ends with, or "ok". */
export async function codeOf(call: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await call;
    return "ok";
  } catch (error) {
    return ConnectError.from(error).code;
  }
}

/** The error a call fails with; throws when it succeeds. */
export async function errorOf(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error("the call succeeded");
}

/** Signs up a fresh account through `t`. */
export async function signUp(t: TestAuth, email = uniqueEmail()) {
  const res = await t.client.signUp({ email, password: STRONG_PASSWORD, displayName: "Ada" });
  const { identity } = await t.asService("gateway").authenticate({ accessToken: res.tokens!.accessToken });
  return { email, user: res.user!, tokens: res.tokens!, sessionId: identity!.sessionId };
}

/**
 * Subscribes to WatchRevocations as the gateway does: `snapshot` is the first message, `messages`
 * collects what follows.
 */
export async function watchRevocations(t: TestAuth) {
  const abort = new AbortController();
  const iterator = t.gateway.watchRevocations({}, { signal: abort.signal })[Symbol.asyncIterator]();
  const first = await iterator.next();
  expect(first.value?.snapshot).toBe(true);
  const snapshot = first.value as WatchRevocationsResponse;
  const messages: WatchRevocationsResponse[] = [];
  const pump = (async () => {
    try {
      for (;;) {
        const next = await iterator.next();
        if (next.done) return;
        messages.push(next.value);
      }
    } catch (error) {
      if (ConnectError.from(error).code !== Code.Canceled) throw error;
    }
  })();
  return {
    snapshot,
    messages,
    sessionIds: () => messages.flatMap((m) => m.sessionIds),
    userIds: () => messages.flatMap((m) => m.userIds),
    keyIds: () => messages.flatMap((m) => m.keyIds),
    async stop() {
      abort.abort();
      await pump.catch(() => undefined);
    },
  };
}

/** The identity the gateway would assert for `user` in `sessionId`. */
export function identityOf(user: { id: string; tier: string; roles: string[] }, sessionId: string): Identity {
  return { userId: user.id, tier: user.tier, roles: user.roles, sessionId, clientAddress: "203.0.113.7" };
}

/** Everything the auth service stores, to show a refused call changed nothing. */
export async function storedState(db: Database) {
  const { rows } = await db.query<Record<string, string>>(
    `select (select md5(coalesce(string_agg(id::text || email || display_name || password_hash || tier || array_to_string(roles, ','), '|' order by id), '')) from users) as users,
            (select md5(coalesce(string_agg(id::text || coalesce(revoked_at::text, '') || expires_at::text, '|' order by id), '')) from sessions) as sessions,
            (select md5(coalesce(string_agg(encode(token_hash, 'hex') || coalesce(rotated_at::text, ''), '|' order by token_hash), '')) from refresh_tokens) as refresh_tokens,
            (select count(*)::text from revocations) as revocations,
            (select count(*)::text from signing_keys) as signing_keys`,
  );
  return rows[0];
}

/** Connect, gRPC and gRPC-Web clients' transports to `t`'s auth service, with the gateway's service token on every call. */
export function gatewayTransports(t: TestAuth): Record<string, () => Transport> {
  const interceptors: Interceptor[] = [
    (next) => (req) => {
      for (const [k, v] of Object.entries(t.gatewayHeaders())) req.header.set(k, v);
      return next(req);
    },
  ];
  const baseUrl = () => t.auth.url;
  return {
    "Connect binary": () => createConnectTransport({ baseUrl: baseUrl(), httpVersion: "2", interceptors }),
    "Connect JSON": () => createConnectTransport({ baseUrl: baseUrl(), httpVersion: "2", useBinaryFormat: false, interceptors }),
    gRPC: () => createGrpcTransport({ baseUrl: baseUrl(), interceptors }),
    "gRPC-Web": () => createGrpcWebTransport({ baseUrl: baseUrl(), httpVersion: "2", interceptors }),
    "gzip-compressed Connect": () =>
      createConnectTransport({
        baseUrl: baseUrl(),
        httpVersion: "2",
        sendCompression: compressionGzip,
        compressMinBytes: 1,
        interceptors,
      }),
  };
}

/** Starts a TestAuth before the file's tests and closes it after them. */
export function useTestAuth(label: string, overrides: Partial<AuthOptions> = {}): TestAuth {
  let current: TestAuth | undefined;
  beforeAll(async () => {
    current = await startTestAuth(label, overrides);
  });
  afterAll(() => current?.close());
  return new Proxy({} as TestAuth, {
    get(_, key) {
      if (!current) throw new Error("the test auth service has not started yet");
      return Reflect.get(current, key);
    },
  });
}
