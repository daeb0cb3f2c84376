// Test helper (not a test): the real auth, lang, greeter (calling lang) and gateway on free ports.
import { randomBytes } from "node:crypto";
import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { type AuthServer, startAuth } from "@portico/auth";
import { type Gateway, startGateway } from "@portico/gateway";
import { AuthService } from "@portico/gen/portico/auth/v1/auth_pb.js";
import { GreeterService } from "@portico/gen/portico/greeter/v1/greeter_pb.js";
import { LanguageService } from "@portico/gen/portico/lang/v1/lang_pb.js";
import { type GreeterServer, startGreeter } from "@portico/greeter";
import { createLogger, type Database } from "@portico/kit";
import { createTestKeys, openTestDatabase } from "@portico/kit/testing";
import { type LangServer, startLang } from "../src/start-lang.js";

export interface LangPlatformOptions {
  /** How long the greeter waits for lang before greeting in English (ms). */
  langTimeoutMs: number;
}

export interface LangPlatform {
  readonly gateway: Gateway;
  /** The lang service's port: the greeter keeps calling it while lang is stopped. */
  readonly langPort: number;
  /** Clients through the gateway (Connect over HTTP/2). */
  readonly auth: Client<typeof AuthService>;
  readonly greeter: Client<typeof GreeterService>;
  readonly lang: Client<typeof LanguageService>;
  /** Signs up a fresh user through the gateway and answers the call options that carry their token. */
  signUp(name: string): Promise<{ headers: { authorization: string } }>;
  /** Stops the lang service (its database stays). */
  stopLang(): Promise<void>;
  /** Starts the lang service again on its port, on the same database. */
  startLangAgain(): Promise<void>;
  close(): Promise<void>;
}

export async function startLangPlatform(label: string, options: LangPlatformOptions): Promise<LangPlatform> {
  const keys = createTestKeys();
  const logger = createLogger({ service: label, level: "silent" });
  const databases: Database[] = [];
  const database = async (service: string) => {
    const db = await openTestDatabase(`${label}_${service}`);
    databases.push(db);
    return db;
  };
  const authServer: AuthServer = await startAuth({
    port: 0,
    db: await database("auth"),
    logger,
    identity: keys.identity("auth"),
    loginLimits: { signUps: 10_000 },
    shutdownGraceMs: 500,
  });
  const langDb = await database("lang");
  const startLangOn = (port: number) =>
    startLang({ port, db: langDb, logger, identity: keys.identity("lang"), shutdownGraceMs: 500 });
  let langServer: LangServer | undefined = await startLangOn(0);
  const langPort = langServer.port;
  const greeterServer: GreeterServer = await startGreeter({
    port: 0,
    db: await database("greeter"),
    logger,
    identity: keys.identity("greeter"),
    lang: { url: langServer.url, timeoutMs: options.langTimeoutMs },
  });
  const gateway = await startGateway({
    port: 0,
    adminPort: 0,
    host: "127.0.0.1",
    logger,
    identity: keys.identity("gateway"),
    shutdownGraceMs: 500,
    upstreams: {
      "portico.auth.v1.AuthService": { targets: [authServer.url], protocol: "connect" },
      "portico.greeter.v1.GreeterService": { targets: [greeterServer.url], protocol: "connect" },
      "portico.lang.v1.LanguageService": { targets: [langServer.url], protocol: "connect" },
    },
  });
  const transport = createConnectTransport({ baseUrl: gateway.url, httpVersion: "2" });
  const auth = createClient(AuthService, transport);
  return {
    gateway,
    langPort,
    auth,
    greeter: createClient(GreeterService, transport),
    lang: createClient(LanguageService, transport),
    async signUp(name) {
      const res = await auth.signUp({
        email: `${name.toLowerCase()}-${randomBytes(4).toString("hex")}@example.com`,
        password: "correct horse battery staple",
        displayName: name,
      });
      return { headers: { authorization: `Bearer ${res.tokens?.accessToken ?? ""}` } };
    },
    async stopLang() {
      await langServer?.close();
      langServer = undefined;
    },
    async startLangAgain() {
      langServer ??= await startLangOn(langPort);
    },
    async close() {
      await gateway.close();
      await greeterServer.close();
      await langServer?.close();
      await authServer.close();
      for (const db of databases) await db.close();
    },
  };
}
