import { startAuth } from "@portico/auth";
import { startGateway } from "@portico/gateway";
import { startGreeter } from "@portico/greeter";
import { createLogger } from "@portico/kit";
import { createTestKeys, openTestDatabase } from "@portico/kit/testing";
import { startLang } from "@portico/lang";
import type { TestProject } from "vitest/node";

import "../src/test/provided-context.js";

/** Access tokens live this long in the component tests, so the app's renewal runs during them. */
export const testAccessTokenTtlSeconds = 10;

/**
 * Starts the real platform once for the web component tests: auth, lang and greeter (calling lang)
 * on their own fresh databases (on the tests' PostgreSQL server) behind the gateway, all on free ports.
 */
export default async function setup(project: TestProject) {
  const logger = createLogger({ service: "web-test", level: "silent" });
  const keys = createTestKeys();
  const authDb = await openTestDatabase("web_auth");
  const greeterDb = await openTestDatabase("web_greeter");
  const langDb = await openTestDatabase("web_lang");
  const auth = await startAuth({
    port: 0,
    db: authDb,
    logger,
    identity: keys.identity("auth"),
    accessTokenTtlSeconds: testAccessTokenTtlSeconds,
    clockSkewSeconds: 0,
    revocationPollMs: 50,
    loginLimits: { signUps: 10_000 },
    shutdownGraceMs: 500,
  });
  const lang = await startLang({ port: 0, db: langDb, logger, identity: keys.identity("lang"), shutdownGraceMs: 500 });
  const greeter = await startGreeter({
    port: 0,
    db: greeterDb,
    logger,
    identity: keys.identity("greeter"),
    // Generous for a loaded test machine: these tests expect the chosen language, not the fallback.
    lang: { url: lang.url, timeoutMs: 2_000 },
  });
  const gateway = await startGateway({
    port: 0,
    adminPort: 0,
    logger,
    identity: keys.identity("gateway"),
    // The tests' cookie-jar "browsers" each name their own client address in x-forwarded-for.
    trustedProxies: ["127.0.0.1", "::1"],
    upstreams: {
      "portico.auth.v1.AuthService": { targets: [auth.url], protocol: "connect" },
      "portico.greeter.v1.GreeterService": { targets: [greeter.url], protocol: "connect" },
      "portico.lang.v1.LanguageService": { targets: [lang.url], protocol: "connect" },
    },
  });
  project.provide("gatewayUrl", gateway.url);
  return async () => {
    await gateway.close();
    await greeter.close();
    await lang.close();
    await auth.close();
    await greeterDb.close();
    await langDb.close();
    await authDb.close();
  };
}
