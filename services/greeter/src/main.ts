import { createEnvReader, createLogger, openDatabase, readServiceConfig, redact, runService } from "@portico/kit";
import { startGreeter } from "./start-greeter.js";

runService("greeter", async () => {
  const config = readServiceConfig("greeter", 8082);
  const env = createEnvReader();
  // The lang service: LANG_URL, or the local one on LANG_PORT as `npm start` runs it.
  const langUrl = env.url("LANG_URL", ["http:", "https:"])?.origin ?? `http://127.0.0.1:${env.port("LANG_PORT", 8083)}`;
  const langTimeoutMs = env.int("GREETER_LANG_TIMEOUT_MS", 300, { min: 1, max: 10_000 });
  const logger = createLogger({ service: "greeter", level: config.logLevel });
  const db = await openDatabase({
    url: config.databaseUrl,
    dataDir: config.dataDir,
    onError: (err) => logger.warn({ err }, "idle database connection failed"),
  });
  logger.info({ database: config.databaseUrl ? redact(config.databaseUrl) : `pglite:${config.dataDir}` }, "database open");
  const server = await startGreeter({
    port: config.port,
    host: config.host,
    db,
    logger,
    identitySecret: config.identitySecret,
    lang: { url: langUrl, timeoutMs: langTimeoutMs },
  });
  return {
    async close() {
      await server.close();
      await db.close();
    },
  };
});
