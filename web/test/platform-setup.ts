import { startGreeter } from "@portico/greeter";
import { freePort } from "@portico/kit";
import { startLang } from "@portico/lang";
import { startTestPlatform } from "@portico/testing";
import type { TestProject } from "vitest/node";

import "../src/test/provided-context.js";

/** Access tokens live this long in the component tests, so the app's renewal runs during them. */
export const testAccessTokenTtlSeconds = 10;

/**
 * Starts the real platform once for the web component tests (@portico/testing's): auth, lang and
 * greeter (calling lang) on their own fresh databases behind the gateway, all on free ports.
 */
export default async function setup(project: TestProject) {
  const platform = await startTestPlatform({
    label: "web",
    services: {
      lang: startLang,
      // Generous for a loaded test machine: these tests expect the chosen language, not the fallback.
      greeter: (deps) => startGreeter({ ...deps, lang: { url: deps.urlOf("lang"), timeoutMs: 2_000 } }),
    },
    auth: { accessTokenTtlSeconds: testAccessTokenTtlSeconds, clockSkewSeconds: 0, revocationPollMs: 50 },
    // The tests' cookie-jar "browsers" each name their own client address in x-forwarded-for.
    gateway: { trustedProxies: ["127.0.0.1", "::1"] },
  });
  project.provide("gatewayUrl", platform.url);
  project.provide("unreachableUrl", `http://127.0.0.1:${await freePort()}`);
  return () => platform.close();
}
