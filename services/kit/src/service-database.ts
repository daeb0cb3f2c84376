import { ConfigError } from "./config-error.js";
import { type Database, openDatabase, redact } from "./database.js";
import type { Logger } from "./logger.js";
import type { ServiceConfig } from "./service-config.js";

/**
 * Opens a service's own database, at the URL its config read (`<SERVICE>_DATABASE_URL`, or
 * `DATABASE_URL` with the service's name appended): `npm start` sets it to its embedded PostgreSQL.
 * Without one the service ends with a line that says what to set.
 */
export async function openServiceDatabase(service: string, config: ServiceConfig, logger: Logger): Promise<Database> {
  const url = config.databaseUrl;
  if (!url) {
    throw new ConfigError(
      `${service} needs a PostgreSQL database: set DATABASE_URL or ${service.toUpperCase()}_DATABASE_URL (npm start runs an embedded server and sets it)`,
    );
  }
  const db = await openDatabase({ url, onError: (err) => logger.warn({ err }, "idle database connection failed") });
  logger.info({ database: redact(url) }, "database open");
  return db;
}
