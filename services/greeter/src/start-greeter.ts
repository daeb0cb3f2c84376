import { fileURLToPath } from "node:url";
import { GreeterService } from "@portico/gen/portico/greeter/v1/greeter_pb.js";
import { type Database, type Logger, migrate, type ServiceIdentity, startServiceServer } from "@portico/kit";
import { createGreeterService } from "./greeter-service.js";
import { createGreetingTranslator } from "./greeting-translator.js";

export interface GreeterOptions {
  /** 0 or unset: a free port. */
  port?: number;
  host?: string;
  db: Database;
  logger: Logger;
  /** The greeter's key pair and the trust bundle (service `greeter`). */
  identity: ServiceIdentity;
  /** The lang service that puts greetings in the caller's language. Unset: every greeting is English. */
  lang?: {
    /** `http://host:port` (h2c) or `https://host:port`. */
    url: string;
    /** How long a greeting waits for it before falling back to English (default 300 ms). */
    timeoutMs?: number;
  };
}

export interface GreeterServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export const greeterMigrations = fileURLToPath(new URL("../migrations", import.meta.url));

/** Migrates the greeter database and serves GreeterService over h2c. */
export async function startGreeter(options: GreeterOptions): Promise<GreeterServer> {
  const translator = createGreetingTranslator({
    signer: options.identity.signer,
    langUrl: options.lang?.url,
    timeoutMs: options.lang?.timeoutMs,
    logger: options.logger,
  });
  await migrate(options.db, greeterMigrations);
  const server = await startServiceServer({
    name: "greeter",
    port: options.port ?? 0,
    host: options.host,
    logger: options.logger,
    identity: options.identity,
    routes: (router) => router.service(GreeterService, createGreeterService({ db: options.db, translator })),
  });
  server.health.set(GreeterService.typeName, true);
  return {
    url: server.url,
    port: server.port,
    async close() {
      await server.close();
      translator.close();
    },
  };
}
