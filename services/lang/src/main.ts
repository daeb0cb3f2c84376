import { createLogger, loadServiceIdentity, openServiceDatabase, readServiceConfig, runService } from "@portico/kit";
import { startLang } from "./start-lang.js";

runService("lang", async () => {
  const config = readServiceConfig("lang");
  const logger = createLogger({ service: "lang", level: config.logLevel });
  const db = await openServiceDatabase("lang", config, logger);
  try {
    const server = await startLang({
      port: config.port,
      host: config.host,
      db,
      logger,
      identity: loadServiceIdentity("lang", config.dataRoot),
    });
    return {
      async close() {
        await server.close();
        await db.close();
      },
    };
  } catch (error) {
    await db.close();
    throw error;
  }
});
