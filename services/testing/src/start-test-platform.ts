import { randomBytes } from "node:crypto";
import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient, type Transport } from "@connectrpc/connect";
import { type AuthOptions, startAuth } from "@portico/auth";
import { type Gateway, type GatewayOptions, startGateway } from "@portico/gateway";
import { AuthService } from "@portico/gen/portico/auth/v1/auth_pb.js";
import {
  type Backend,
  type BackendDependencies,
  createLogger,
  type Database,
  GATEWAY_SERVICE,
  type PlatformDefinition,
  platform as repositoryPlatform,
} from "@portico/kit";
import { createTestKeys, openTestDatabase, type TestKeys } from "@portico/kit/testing";
import { bearer } from "./bearer.js";
import { createGatewayTransports, type GatewayTransports } from "./gateway-transports.js";
import { type RawRequest, type RawResponse, rawRequest } from "./raw-request.js";

/** What a backend's start function gets in a test: a free port, its own fresh database, its keys. */
export interface TestBackendDependencies extends BackendDependencies {
  port: number;
  /** Where another backend of this test platform answers (started before this one). */
  urlOf(name: string): string;
}

/** A backend's start function, e.g. `startGreeter` or `(deps) => startGreeter({ ...deps, lang: … })`. */
export type TestBackendStart = (deps: TestBackendDependencies) => Promise<Backend>;

export interface TestPlatformOptions {
  /**
   * The backends, by their name in portico.services.json (which says what proto services the
   * gateway routes to each), started in this order.
   */
  services: Record<string, TestBackendStart>;
  /** Prefix of the test databases' names (default: the services' names). */
  label?: string;
  /** Options of the auth service (sign-ups are not rate-limited unless set here). */
  auth?: Partial<Omit<AuthOptions, "db" | "logger" | "identity">>;
  /** Options of the gateway; `upstreams` entries are added to the platform's. */
  gateway?: Partial<GatewayOptions>;
  /** Log level of every service (default silent). */
  logLevel?: string;
  /** The platform definition (default: the repository's portico.services.json). */
  definition?: PlatformDefinition;
}

/** A signed-up user; pass it as a call's options to call as them: `client.hello(req, user)`. */
export interface TestUser {
  userId: string;
  email: string;
  token: string;
  refreshToken: string;
  headers: { authorization: string };
}

export interface TestPlatform {
  readonly gateway: Gateway;
  /**
   * What the gateway was started with (free ports, its identity, the upstreams): spread it, with
   * changes, to start another gateway in front of the same services, or to `gateway.reload`.
   */
  readonly gatewayOptions: GatewayOptions;
  /** The gateway's public URL. */
  readonly url: string;
  /** Connect over HTTP/2 to the gateway (`transports.connect`). */
  readonly transport: Transport;
  /** A transport to the gateway of each protocol it speaks: Connect (HTTP/2 and 1.1), gRPC, gRPC-web. */
  readonly transports: GatewayTransports;
  /** The key pair of the gateway and of every service of the platform definition, and the trust bundle of them all. */
  readonly keys: TestKeys;
  /** A client of `service` through the gateway (`transport` by default). */
  client<T extends DescService>(service: T, transport?: Transport): Client<T>;
  /**
   * Signs up a fresh user through the gateway; with `roles`, sets them in the auth database and
   * refreshes, so the user's token carries them (e.g. a permission a policy requires).
   */
  signUp(name?: string, options?: { roles?: string[] }): Promise<TestUser>;
  /** A raw HTTP/2 request to the gateway (or to `request.url`): for what no Connect client sends. */
  raw(request: RawRequest): Promise<RawResponse>;
  /** The database of a backend (or of `auth`). */
  db(name: string): Database;
  /** Where a backend (or `auth`) answers directly (not through the gateway). */
  urlOf(name: string): string;
  /** Stops a backend (or `auth`); its port and database stay for {@link TestPlatform.start}. */
  stop(name: string): Promise<void>;
  /** Starts a stopped backend (or `auth`) again, on its port and database. */
  start(name: string): Promise<void>;
  close(): Promise<void>;
}

interface Running {
  start: TestBackendStart;
  db: Database;
  port: number;
  url: string;
  server?: Backend;
}

/**
 * The real auth service, the given backends and a real gateway in front of them, all on free
 * ports, each service with its own fresh database (on the test run's embedded PostgreSQL, or on the server of `DATABASE_URL`)
 * and keys, in a few lines:
 *
 * ```ts
 * const platform = await startTestPlatform({ services: { greeter: startGreeter } });
 * const ada = await platform.signUp("ada");
 * await platform.client(GreeterService).greet({ name: "Ada" }, ada);
 * ```
 */
export async function startTestPlatform(options: TestPlatformOptions): Promise<TestPlatform> {
  const definition = options.definition ?? repositoryPlatform;
  const names = Object.keys(options.services);
  const protoServices = (name: string): string[] => {
    const service = definition.services.find((s) => s.name === name);
    if (!service) {
      const known = definition.services.map((s) => s.name).join(", ");
      throw new Error(`startTestPlatform: "${name}" is not a service of portico.services.json (known: ${known})`);
    }
    return service.protoServices;
  };
  for (const name of names) protoServices(name);
  if (names.includes("auth")) throw new Error("startTestPlatform: auth is always started; its options go in `auth`");
  const label = options.label ?? names.join("_");
  // As in production, the trust bundle holds every service of the platform, started or not.
  const keys = createTestKeys([GATEWAY_SERVICE, ...definition.services.map((s) => s.name)]);
  const logger = (service: string) => createLogger({ service, level: options.logLevel ?? "silent" });
  const closers: (() => Promise<void>)[] = [];
  const running = new Map<string, Running>();
  const urlOf = (name: string): string => {
    const url = running.get(name)?.url;
    if (!url) throw new Error(`urlOf: "${name}" is not started (started: ${[...running.keys()].join(", ") || "none"})`);
    return url;
  };
  const startOne = async (name: string, entry: Running) => {
    entry.server = await entry.start({
      port: entry.port,
      db: entry.db,
      logger: logger(name),
      identity: keys.identity(name),
      shutdownGraceMs: 500,
      urlOf,
    });
    entry.port = entry.server.port;
    entry.url = entry.server.url;
  };
  const starts: [string, TestBackendStart][] = [
    ["auth", (deps) => startAuth({ ...deps, ...options.auth, loginLimits: { signUps: 10_000, ...options.auth?.loginLimits } })],
    ...names.map((name): [string, TestBackendStart] => [name, options.services[name] as TestBackendStart]),
  ];

  try {
    for (const [name, start] of starts) {
      const db = await openTestDatabase(`${label}_${name}`);
      closers.unshift(() => db.close());
      const entry: Running = { start, db, port: 0, url: "" };
      running.set(name, entry);
      await startOne(name, entry);
      closers.unshift(async () => {
        await entry.server?.close();
        entry.server = undefined;
      });
    }
    const upstreams: GatewayOptions["upstreams"] = {};
    for (const [name] of starts) {
      for (const service of protoServices(name)) upstreams[service] = { targets: [urlOf(name)], protocol: "connect" };
    }
    const gatewayOptions: GatewayOptions = {
      port: 0,
      adminPort: 0,
      host: "127.0.0.1",
      identity: keys.identity(GATEWAY_SERVICE),
      logger: logger(GATEWAY_SERVICE),
      accessLog: false,
      shutdownGraceMs: 500,
      ...options.gateway,
      upstreams: { ...upstreams, ...options.gateway?.upstreams },
    };
    const gateway = await startGateway(gatewayOptions);
    closers.unshift(() => gateway.close());
    const transports = createGatewayTransports(gateway.url);
    const authClient = createClient(AuthService, transports.connect);
    const entryOf = (name: string): Running => {
      const entry = running.get(name);
      if (!entry) throw new Error(`"${name}" is not a service of this test platform (${[...running.keys()].join(", ")})`);
      return entry;
    };
    return {
      gateway,
      gatewayOptions,
      url: gateway.url,
      transport: transports.connect,
      transports,
      keys,
      client: (service, via = transports.connect) => createClient(service, via),
      async signUp(name = "user", { roles } = {}) {
        const email = `${name.toLowerCase().replace(/[^a-z0-9]/g, "") || "user"}-${randomBytes(4).toString("hex")}@example.com`;
        let { user, tokens } = await authClient.signUp({ email, password: "correct horse battery staple", displayName: name });
        if (roles) {
          await entryOf("auth").db.query("update users set roles = $2 where id = $1", [user?.id, roles]);
          // The change voids the user's tokens; a refresh carries the roles.
          ({ tokens } = await authClient.refresh({ refreshToken: tokens?.refreshToken ?? "" }));
        }
        const token = tokens?.accessToken ?? "";
        return { userId: user?.id ?? "", email, token, refreshToken: tokens?.refreshToken ?? "", headers: bearer(token) };
      },
      raw: (request) => rawRequest(request.url ?? gateway.url, request),
      db: (name) => entryOf(name).db,
      urlOf,
      async stop(name) {
        const entry = entryOf(name);
        await entry.server?.close();
        entry.server = undefined;
      },
      async start(name) {
        const entry = entryOf(name);
        if (!entry.server) await startOne(name, entry);
      },
      async close() {
        for (const close of closers.splice(0)) await close().catch(() => {});
      },
    };
  } catch (error) {
    for (const close of closers.splice(0)) await close().catch(() => {});
    throw error;
  }
}
