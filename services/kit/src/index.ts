export { type CallGuard, createCallGuard } from "./call-guard.js";
export { type CallVerifier, type CallVerifierOptions, createCallVerifier } from "./call-verifier.js";
export { type CircuitBreaker, type CircuitBreakerOptions, createCircuitBreaker } from "./circuit-breaker.js";
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
export type { DatabaseListener, ListenOptions } from "./database-listener.js";
export { type AccessLevel, type EffectivePolicy, parseRate, type Rate, resolvePolicy } from "./effective-policy.js";
export {
  type EmbeddedPostgres,
  type EmbeddedPostgresOptions,
  openEmbeddedPostgres,
  prepareEmbeddedPostgres,
  type RunningEmbeddedPostgres,
  startEmbeddedPostgres,
} from "./embedded-postgres.js";
export { createEnvReader, type Env, type EnvReader } from "./env-reader.js";
export { freePort, freePorts } from "./free-port.js";
export { createHealthStatus, type HealthStatus } from "./health-service.js";
export {
  type Caller,
  callerKey,
  GATEWAY_SERVICE,
  type Identity,
  identityHeaders,
  identityKey,
  requireIdentity,
  tokenTypes,
} from "./identity.js";
export { createIdentityInterceptor } from "./identity-interceptor.js";
export { ensureLocalKeys, localKeyPaths } from "./local-keys.js";
export { createLogger, type Logger, type LoggerOptions } from "./logger.js";
export { createLruCache, type LruCache } from "./lru-cache.js";
export { migrate } from "./migrate.js";
export {
  type PlatformDefinition,
  type PlatformService,
  parsePlatformDefinition,
  platformDefinitionPath,
  readPlatformDefinition,
} from "./platform-definition.js";
export { type BackendContext, runBackend } from "./run-backend.js";
export { describeStartupError, runService, type Stoppable } from "./run-service.js";
export { createServiceClient, type ServiceClient, type ServiceClientOptions } from "./service-client.js";
export { readServiceConfig, type ServiceConfig } from "./service-config.js";
export { openServiceDatabase } from "./service-database.js";
export { checkServiceName, platform, serviceNameOf, servicePorts, serviceUrls } from "./service-directory.js";
export {
  createServiceIdentity,
  loadServiceIdentity,
  type ServiceIdentity,
  type ServiceIdentityOptions,
} from "./service-identity.js";
export {
  generateServiceKey,
  importServiceKey,
  type Jwk,
  type KeyAlgorithm,
  type ServiceKey,
  serviceOfKid,
} from "./service-key.js";
export { type ServiceServer, type ServiceServerOptions, startServiceServer } from "./service-server.js";
export {
  type Backend,
  type BackendDependencies,
  type BackendOptions,
  type ServiceHandlers,
  serviceHandlers,
  startBackend,
} from "./start-backend.js";
export { routeStreams, type StreamHandler } from "./stream-handlers.js";
export { createTokenSigner, type SignedToken, type TokenSigner, type TokenSignerOptions } from "./token-signer.js";
export {
  type ActiveTracing,
  activeTracing,
  currentTraceId,
  otlpTracesUrl,
  startTracing,
  type TraceSpan,
  type Tracing,
  type TracingOptions,
} from "./tracing.js";
export { traceDatabase } from "./tracing-database.js";
export { createTrustBundle, type TrustBundle, type TrustBundleOptions, type TrustedKey } from "./trust-bundle.js";
