import { createLogger, loadServiceIdentity, openDatabase, readServiceConfig, redact, runService } from "@portico/kit";
import { startGreeter } from "./start-greeter.js";

runService("greeter", async () => {
  const config = readServiceConfig("greeter", 8082);
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
    identity: loadServiceIdentity("greeter", config.dataRoot),
  });
  return {
    async close() {
      await server.close();
      await db.close();
    },
  };
});
