import {
  createEnvReader,
  createLogger,
  loadServiceIdentity,
  openDatabase,
  readServiceConfig,
  runService,
  startTracing,
  traceDatabase,
} from "@portico/kit";
import { startAuth } from "./start-auth.js";

runService("auth", async () => {
  const tracing = await startTracing({ service: "auth" });
  const config = readServiceConfig("auth", 8081);
  const env = createEnvReader();
  const logger = createLogger({ service: "auth", level: config.logLevel });
  const db = await openDatabase({
    url: config.databaseUrl,
    dataDir: config.dataDir,
    onError: (error) => logger.warn({ err: error }, "idle database connection failed"),
  });
  try {
    const auth = await startAuth({
      port: config.port,
      host: config.host,
      db: traceDatabase(db),
      logger,
      identity: loadServiceIdentity("auth", config.dataRoot),
      issuer: env.string("AUTH_ISSUER", "portico-auth"),
      audience: env.string("AUTH_AUDIENCE", "portico"),
      accessTokenTtlSeconds: env.int("AUTH_ACCESS_TOKEN_TTL_SECONDS", 900, { min: 10, max: 3600 }),
      refreshTokenTtlSeconds: env.int("AUTH_REFRESH_TOKEN_TTL_SECONDS", 30 * 86_400, { min: 60, max: 365 * 86_400 }),
      keyRotationSeconds: env.int("AUTH_KEY_ROTATION_SECONDS", 7 * 86_400, { min: 60, max: 365 * 86_400 }),
      tokenCacheSize: env.int("AUTH_TOKEN_CACHE_SIZE", 50_000, { min: 0, max: 10_000_000 }),
      loginLimits: {
        signUps: env.int("AUTH_SIGNUPS_PER_IP_PER_HOUR", 20, { min: 1, max: 1_000_000 }),
      },
    });
    return {
      async close() {
        await auth.close();
        await db.close();
        await tracing.close();
      },
    };
  } catch (error) {
    await db.close();
    throw error;
  }
});
