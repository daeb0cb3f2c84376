// @portico/testing: the test harness. Tests import it; no production package does.
export { bearer } from "./bearer.js";
export { connectErrorOf } from "./connect-error-of.js";
export { createGatewayTransports, type GatewayTransports } from "./gateway-transports.js";
export { type RawRequest, type RawResponse, rawRequest } from "./raw-request.js";
export {
  startTestPlatform,
  type TestBackendDependencies,
  type TestBackendStart,
  type TestPlatform,
  type TestPlatformOptions,
  type TestUser,
} from "./start-test-platform.js";
