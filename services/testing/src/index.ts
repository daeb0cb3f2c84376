// @portico/testing: the test harness. Tests import it; no production package does.
export { connectErrorOf } from "./connect-error-of.js";
export {
  startTestPlatform,
  type TestBackendDependencies,
  type TestBackendStart,
  type TestPlatform,
  type TestPlatformOptions,
  type TestUser,
} from "./start-test-platform.js";
