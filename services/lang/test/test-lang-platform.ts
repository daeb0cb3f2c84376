// Test helper (not a test): the real auth, lang, greeter (calling lang) and gateway on free ports,
// on the @portico/testing harness.
import type { Client } from "@connectrpc/connect";
import type { Gateway } from "@portico/gateway";
import { AuthService } from "@portico/gen/portico/auth/v1/auth_pb.js";
import { GreeterService } from "@portico/gen/portico/greeter/v1/greeter_pb.js";
import { LanguageService } from "@portico/gen/portico/lang/v1/lang_pb.js";
import { startGreeter } from "@portico/greeter";
import { startTestPlatform, type TestUser } from "@portico/testing";
import { startLang } from "../src/start-lang.js";

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
  /** Signs up a fresh user through the gateway: pass it as call options to call as them. */
  signUp(name: string): Promise<TestUser>;
  /** Stops the lang service (its database stays). */
  stopLang(): Promise<void>;
  /** Starts the lang service again on its port, on the same database. */
  startLangAgain(): Promise<void>;
  close(): Promise<void>;
}

export async function startLangPlatform(label: string, options: LangPlatformOptions): Promise<LangPlatform> {
  const platform = await startTestPlatform({
    label,
    services: {
      lang: startLang,
      greeter: (deps) => startGreeter({ ...deps, lang: { url: deps.urlOf("lang"), timeoutMs: options.langTimeoutMs } }),
    },
  });
  return {
    gateway: platform.gateway,
    langPort: Number(new URL(platform.urlOf("lang")).port),
    auth: platform.client(AuthService),
    greeter: platform.client(GreeterService),
    lang: platform.client(LanguageService),
    signUp: (name) => platform.signUp(name),
    stopLang: () => platform.stop("lang"),
    startLangAgain: () => platform.start("lang"),
    close: () => platform.close(),
  };
}
