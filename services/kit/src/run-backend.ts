import { createLogger } from "./logger.js";
import { runService, type Stoppable } from "./run-service.js";
import { readServiceConfig, type ServiceConfig } from "./service-config.js";
import { openServiceDatabase } from "./service-database.js";
import { loadServiceIdentity } from "./service-identity.js";
import type { BackendDependencies } from "./start-backend.js";
import { startTracing } from "./tracing.js";
import { traceDatabase } from "./tracing-database.js";

/** What `runBackend` hands the service's start function: its dependencies and the settings they came from. */
export interface BackendContext extends BackendDependencies {
  port: number;
  host: string;
  config: ServiceConfig;
}

/**
 * A backend service's `main`: reads its settings (`<NAME>_PORT`, its database, `LOG_LEVEL`…),
 * opens its database, loads its keys, calls `start` and runs it as a process (runService: one
 * line on a bad setting, graceful stop on SIGTERM). The database closes after the service.
 */
export function runBackend(name: string, start: (context: BackendContext) => Promise<Stoppable>): void {
  runService(name, async () => {
    // OTEL_EXPORTER_OTLP_ENDPOINT set: spans for calls, queries and outgoing calls; unset: nothing loaded.
    const tracing = await startTracing({ service: name });
    const config = readServiceConfig(name);
    const logger = createLogger({ service: name, level: config.logLevel });
    const db = await openServiceDatabase(name, config, logger);
    try {
      const identity = loadServiceIdentity(name, config.dataRoot);
      const server = await start({ port: config.port, host: config.host, db: traceDatabase(db), logger, identity, config });
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
}
