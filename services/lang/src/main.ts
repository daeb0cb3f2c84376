import {
  createLogger,
  loadServiceIdentity,
  openDatabase,
  readServiceConfig,
  redact,
  runService,
  startTracing,
  traceDatabase,
} from "@portico/kit";
import { startLang } from "./start-lang.js";

runService("lang", async () => {
  const tracing = await startTracing({ service: "lang" });
  const config = readServiceConfig("lang");
  const logger = createLogger({ service: "lang", level: config.logLevel });
  const db = await openDatabase({
    url: config.databaseUrl,
    dataDir: config.dataDir,
    onError: (err) => logger.warn({ err }, "idle database connection failed"),
  });
  logger.info({ database: config.databaseUrl ? redact(config.databaseUrl) : `pglite:${config.dataDir}` }, "database open");
  try {
    const server = await startLang({
      port: config.port,
      host: config.host,
      db: traceDatabase(db),
      logger,
      identity: loadServiceIdentity("lang", config.dataRoot),
    });
    return {
      async close() {
        await server.close();
        await db.close();
        await tracing.close();
      },
    };
  } catch (error) {
    await db.close();
    throw error;
  }
});
