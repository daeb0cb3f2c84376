export { ConfigError } from "./config-error.js";
export {
  type Database,
  type DatabaseOptions,
  ensurePostgresDatabase,
  openDatabase,
  type Queryable,
  type QueryResult,
  redact,
} from "./database.js";
export { type AccessLevel, type EffectivePolicy, parseRate, type Rate, resolvePolicy } from "./effective-policy.js";
export { createEnvReader, type Env, type EnvReader } from "./env-reader.js";
export { createHealthStatus, type HealthStatus } from "./health-service.js";
export {
  createIdentitySigner,
  createIdentityVerifier,
  type Identity,
  type IdentityAssertionOptions,
  type IdentitySigner,
  type IdentityVerifier,
  identityHeaders,
  identityKey,
  requireIdentity,
} from "./identity.js";
export { createIdentityInterceptor } from "./identity-interceptor.js";
export { loadIdentitySecret } from "./identity-secret.js";
export { createLogger, type Logger, type LoggerOptions } from "./logger.js";
export { migrate } from "./migrate.js";
export { type PrivatePostgres, startPrivatePostgres } from "./private-postgres.js";
export { describeStartupError, runService, type Stoppable } from "./run-service.js";
export { readServiceConfig, type ServiceConfig } from "./service-config.js";
export { type ServiceServer, type ServiceServerOptions, startServiceServer } from "./service-server.js";
export { openTestDatabase } from "./test-database.js";
