// Test helper (not a test): the @portico/testing platform (the real auth and greeter behind the
// real gateway) with what only the gateway's tests need: more gateways with a changed config, an
// admin token, greeter and auth clients, and a lone gateway with nothing behind it. (Reload the
// gateway with a changed copy of `platform.gatewayOptions`.)
import type { Client, Transport } from "@connectrpc/connect";
import { AuthService } from "@portico/gen/portico/auth/v1/auth_pb.js";
import { GreeterService } from "@portico/gen/portico/greeter/v1/greeter_pb.js";
import { startGreeter } from "@portico/greeter";
import { createLogger, freePort } from "@portico/kit";
import { createTestKeys } from "@portico/kit/testing";
import {
  startTestPlatform as startTesting,
  type TestPlatform as TestingPlatform,
  type TestPlatformOptions,
} from "@portico/testing";
import { type Gateway, type GatewayOptions, startGateway } from "../src/start-gateway.js";

export { bearer, type RawRequest, type RawResponse, rawRequest } from "@portico/testing";
export { freePort };

export interface TestPlatform extends TestingPlatform {
  authClient: Client<typeof AuthService>;
  greeterClient(transport?: Transport): Client<typeof GreeterService>;
  /** An access token of a fresh user with these roles. */
  tokenWithRoles(roles: string[]): Promise<string>;
  /** An access token with the `gateway.admin` role GatewayService needs (one per platform). */
  adminToken(): Promise<string>;
  /**
   * Another gateway in front of this platform's services, on free ports, silent: `options` are
   * added to the platform's config (`upstreams` entries replace the platform's for those services).
   * Closed with the platform.
   */
  startGateway(options?: Partial<GatewayOptions>): Promise<Gateway>;
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

/** The real auth and greeter behind the gateway started with `overrides`; auth checks revocations every 50 ms. */
export async function startTestPlatform(
  label: string,
  overrides: Partial<GatewayOptions> = {},
  authOverrides: NonNullable<TestPlatformOptions["auth"]> = {},
): Promise<TestPlatform> {
  const platform = await startTesting({
    label,
    services: { greeter: startGreeter },
    auth: { revocationPollMs: 50, ...authOverrides },
    gateway: overrides,
  });
  const extraGateways: Gateway[] = [];
  let admin: Promise<string> | undefined;
  const tokenWithRoles = async (roles: string[]) => (await platform.signUp("roles", { roles })).token;
  return {
    ...platform,
    authClient: platform.client(AuthService),
    greeterClient: (transport) => platform.client(GreeterService, transport),
    tokenWithRoles,
    adminToken: () => {
      admin ??= tokenWithRoles(["gateway.admin"]);
      return admin;
    },
    async startGateway(options = {}) {
      const extra = await startGateway({
        ...platform.gatewayOptions,
        ...options,
        upstreams: { ...platform.gatewayOptions.upstreams, ...options.upstreams },
      });
      extraGateways.push(extra);
      return extra;
    },
    async close() {
      for (const extra of extraGateways.splice(0)) await extra.close().catch(() => {});
      await platform.close();
    },
  };
}
