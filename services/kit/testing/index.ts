// Test helpers of kit (not part of its public surface): `import … from "@portico/kit/testing"`.
import { GATEWAY_SERVICE, type Identity } from "../src/identity.js";
import { createServiceIdentity, type ServiceIdentity } from "../src/service-identity.js";
import { generateServiceKey, type Jwk, type ServiceKey } from "../src/service-key.js";
import { createTrustBundle } from "../src/trust-bundle.js";

/** Keys and a trust bundle for a set of services, in memory. */
export interface TestKeys {
  readonly keys: Readonly<Record<string, ServiceKey>>;
  /** The trust bundle holding every test service's public key. */
  readonly jwks: { keys: Jwk[] };
  /** A fresh ServiceIdentity (own verifier cache) of one of the services. */
  identity(service: string): ServiceIdentity;
  /** The gateway's assertion of `user` addressed to `audience`, as the gateway would send it. */
  assertion(user: Partial<Identity> & { userId: string }, audience: string, nowSeconds?: number): string;
}

export function createTestKeys(services: readonly string[] = [GATEWAY_SERVICE, "auth", "greeter", "lang"]): TestKeys {
  const keys: Record<string, ServiceKey> = {};
  for (const service of services) keys[service] = generateServiceKey(service);
  const jwks = { keys: Object.values(keys).map((k) => k.publicJwk) };
  const identity = (service: string) => {
    const key = keys[service];
    if (!key) throw new Error(`createTestKeys: no key for ${service}; known: ${services.join(", ")}`);
    return createServiceIdentity({ service, key, trust: createTrustBundle({ jwks }) });
  };
  let gateway: ServiceIdentity | undefined;
  return {
    keys,
    jwks,
    identity,
    assertion(user, audience, nowSeconds) {
      gateway ??= identity(GATEWAY_SERVICE);
      const full: Identity = { tier: "free", roles: [], sessionId: "s-test", clientAddress: "203.0.113.7", ...user };
      return gateway.signer.assertion(full, audience, nowSeconds).token;
    },
  };
}
export { type PrivatePostgres, startPrivatePostgres } from "./private-postgres.js";
export { openTestDatabase } from "./test-database.js";
export { TEST_SERVER_ENV, testServerUrl } from "./test-server-url.js";
export { until } from "./until.js";
