import { readFileSync, watch } from "node:fs";
import { basename, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import {
  ConfigError,
  createEnvReader,
  createLogger,
  loadServiceIdentity,
  platform,
  readServiceConfig,
  runService,
  startTracing,
} from "@portico/kit";
import { createAccessLogFile } from "./access-log-file.js";
import { type GatewayConfig, loadGatewayConfigFile, parseTrustedProxiesEnv, parseUpstreamsEnv } from "./gateway-config.js";
import { defaultImagePath } from "./load-image.js";
import { startMemoryReducer } from "./memory-reducer.js";
import { platformUpstreams } from "./platform-upstreams.js";
import { settleHeap } from "./settle-heap.js";
import { startGateway } from "./start-gateway.js";

const packageDir = fileURLToPath(new URL("..", import.meta.url));
const repoRoot = fileURLToPath(new URL("../../..", import.meta.url));

runService("gateway", async () => {
  // OTEL_EXPORTER_OTLP_ENDPOINT set: a span per proxied call (src/call-tracing.ts); unset: nothing loaded.
  const tracing = await startTracing({ service: "gateway" });
  const env = process.env;
  const read = createEnvReader(env);
  const service = readServiceConfig("gateway", platform.gateway.port, env);
  const configPath = read.string("GATEWAY_CONFIG", `${packageDir}gateway.config.json`);
  const readConfig = (): GatewayConfig => {
    const config = loadGatewayConfigFile(configPath);
    // The platform definition's services, then the file's upstreams, then GATEWAY_UPSTREAMS.
    const override = read.optionalString("GATEWAY_UPSTREAMS");
    config.upstreams = {
      ...platformUpstreams(env),
      ...config.upstreams,
      ...(override ? parseUpstreamsEnv(override) : {}),
    };
    const proxies = read.optionalString("GATEWAY_TRUSTED_PROXIES");
    if (proxies !== undefined) config.trustedProxies = parseTrustedProxiesEnv(proxies);
    if (read.optionalString("RATE_LIMIT_FAILURE")) {
      config.rateLimitFailure = read.oneOf("RATE_LIMIT_FAILURE", ["open", "closed"] as const, "open");
    }
    return config;
  };
  /** The text of the file the variable `name` names (a PEM, a token), or undefined when unset. */
  const readNamedFile = (name: string): string | undefined => {
    const path = read.optionalString(name);
    if (!path) return undefined;
    try {
      return readFileSync(path, "utf8");
    } catch (error) {
      throw new ConfigError(`${name}: cannot read ${path}: ${(error as Error).message}`);
    }
  };
  // The admin port's /metrics token: the variable, or a file holding it (a compose or Kubernetes secret).
  const metricsToken = (readNamedFile("ADMIN_METRICS_TOKEN_FILE") ?? read.optionalString("ADMIN_METRICS_TOKEN"))?.trim();
  const cert = readNamedFile("GATEWAY_TLS_CERT");
  const key = readNamedFile("GATEWAY_TLS_KEY");
  if ((cert === undefined) !== (key === undefined)) {
    throw new ConfigError("GATEWAY_TLS_CERT and GATEWAY_TLS_KEY must be set together");
  }
  const logger = createLogger({ service: "gateway", level: service.logLevel });
  const accessLog = createAccessLogFile({ level: service.logLevel });
  process.once("exit", () => accessLog.flush());
  const gateway = await startGateway({
    ...readConfig(),
    port: service.port,
    host: read.string("GATEWAY_HOST", "0.0.0.0"),
    adminPort: read.port("ADMIN_PORT", platform.gateway.adminPort),
    adminHost: read.optionalString("ADMIN_HOST"),
    metricsToken,
    imagePath: read.string("GATEWAY_IMAGE", defaultImagePath()),
    identity: loadServiceIdentity("gateway", service.dataRoot, env),
    logger,
    accessLog: accessLog.write,
    tls: cert && key ? { cert, key } : undefined,
    upstreamCa: readNamedFile("GATEWAY_UPSTREAM_CA"),
    webRoot: read.string("WEB_ROOT", `${repoRoot}web/dist`),
    redisUrl: read.url("REDIS_URL", ["redis:", "rediss:"])?.toString(),
  });
  const reload = (why: string) => {
    try {
      gateway.reload(readConfig());
      logger.info({ why, config: configPath }, "config reloaded");
    } catch (error) {
      logger.error({ err: (error as Error).message }, "config reload failed; keeping the running config");
    }
  };
  process.on("SIGHUP", () => reload("SIGHUP"));
  // A change of the config file applies too (editors replace files: watch the directory).
  let pending: NodeJS.Timeout | undefined;
  const watcher = watch(dirname(configPath), (_event, name) => {
    if (name !== basename(configPath)) return;
    clearTimeout(pending);
    pending = setTimeout(() => reload("file changed"), 200);
  });
  watcher.on("error", () => {});
  watcher.unref();
  // Listening is not ready: /readyz answers 200 once the auth service answers too.
  process.stdout.write(`gateway: listening at ${gateway.url} (admin ${gateway.adminUrl}; ready when /readyz answers 200)\n`);
  // Start-up is over: its garbage and the young generation it grew go back to the system now
  // (src/settle-heap.ts; V8's own memory reducer, which would have 8–16 s later, is off).
  await settleHeap();
  // And again whenever an idle gateway holds much more than it did (src/memory-reducer.ts).
  const memoryReducer = startMemoryReducer({
    onReduced: (before, after, ms) =>
      logger.debug({ beforeBytes: before, afterBytes: after, ms: Math.round(ms) }, "heap reduced while idle"),
  });
  return {
    ...gateway,
    close: async () => {
      memoryReducer.close();
      try {
        await gateway.close();
      } finally {
        accessLog.flush();
        await tracing.close();
      }
    },
  };
});
