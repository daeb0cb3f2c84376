import {
  createEnvReader,
  createLogger,
  loadServiceIdentity,
  openDatabase,
  readServiceConfig,
  redact,
  runService,
  serviceUrl,
  startTracing,
  traceDatabase,
} from "@portico/kit";
import { startGreeter } from "./start-greeter.js";

runService("greeter", async () => {
  const tracing = await startTracing({ service: "greeter" });
  const config = readServiceConfig("greeter", 8082);
  // The lang service: LANG_URL, else 127.0.0.1 on LANG_PORT (8083), as `npm start` runs it.
  const lang = {
    url: serviceUrl("lang"),
    timeoutMs: createEnvReader().int("GREETER_LANG_TIMEOUT_MS", 300, { min: 1, max: 10_000 }),
  };
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
    db: traceDatabase(db),
    logger,
    identity: loadServiceIdentity("greeter", config.dataRoot),
    lang,
  });
  return {
    async close() {
      await server.close();
      await db.close();
      await tracing.close();
    },
  };
});
