import { randomBytes } from "node:crypto";
import { type Client, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { AuthService } from "@portico/gen/portico/auth/v1/auth_pb.js";
import {
  createIdentitySigner,
  createLogger,
  type Database,
  type Identity,
  identityHeaders,
  openTestDatabase,
} from "@portico/kit";
import { type AuthOptions, type AuthServer, startAuth } from "./start-auth.js";

/** A running auth service on a fresh database, with clients, for tests. */
export interface TestAuth {
  auth: AuthServer;
  db: Database;
  secret: string;
  /** Connect client with no identity, as an anonymous caller through the gateway. */
  client: Client<typeof AuthService>;
  /** A client whose calls carry a gateway assertion of `identity`, and optional extra headers. */
  as(identity: Identity, headers?: Record<string, string>): Client<typeof AuthService>;
  /** A client sending `headers` on every call. */
  withHeaders(headers: Record<string, string>): Client<typeof AuthService>;
  /** Restarts the service on the same database and port. */
  restart(overrides?: Partial<AuthOptions>): Promise<void>;
  close(): Promise<void>;
}

export const STRONG_PASSWORD = "correct horse battery staple";

export async function startTestAuth(label: string, overrides: Partial<AuthOptions> = {}): Promise<TestAuth> {
  const db = await openTestDatabase(label);
  const secret = randomBytes(32).toString("hex");
  const logger = createLogger({ service: "auth-test", level: "silent" });
  const options = (extra: Partial<AuthOptions>): AuthOptions => ({
    port: 0,
    db,
    logger,
    identitySecret: secret,
    revocationPollMs: 50,
    loginLimits: { signUps: 10_000 },
    shutdownGraceMs: 1_000,
    ...overrides,
    ...extra,
  });
  const signer = createIdentitySigner({ secret });
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
  return {
    get auth() {
      return holder.auth;
    },
    db,
    secret,
    client: createClient(AuthService, transport()),
    as: (identity, headers = {}) =>
      createClient(
        AuthService,
        transport([headerInterceptor(() => ({ ...headers, [identityHeaders.assertion]: signer.sign(identity).assertion }))]),
      ),
    withHeaders: (headers) => createClient(AuthService, transport([headerInterceptor(() => headers)])),
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

/** A gRPC client straight to the auth port. */
export function grpcClient(url: string): Client<typeof AuthService> {
  return createClient(AuthService, createGrpcTransport({ baseUrl: url }));
}

let counter = 0;
/** A fresh, valid email address. */
export function uniqueEmail(prefix = "user"): string {
  return `${prefix}.${process.pid}.${Date.now()}.${counter++}@example.com`;
}
