import { fileURLToPath } from "node:url";
import { GreeterService } from "@portico/gen/portico/greeter/v1/greeter_pb.js";
import { type Backend, type BackendDependencies, serviceHandlers, startBackend } from "@portico/kit";
import { createGreeterService } from "./greeter-service.js";
import { createGreetingTranslator } from "./greeting-translator.js";

export interface GreeterOptions extends BackendDependencies {
  /** The lang service that puts greetings in the caller's language. Unset: every greeting is English. */
  lang?: {
    /** `http://host:port` (h2c) or `https://host:port`, or its replicas' addresses. */
    url: string | readonly string[];
    /** How long a greeting waits for it before falling back to English (default 300 ms). */
    timeoutMs?: number;
  };
}

export type GreeterServer = Backend;

export const greeterMigrations = fileURLToPath(new URL("../migrations", import.meta.url));

/** Migrates the greeter database and serves GreeterService over h2c. */
export async function startGreeter(options: GreeterOptions): Promise<GreeterServer> {
  const translator = createGreetingTranslator({
    signer: options.identity.signer,
    langUrl: options.lang?.url,
    timeoutMs: options.lang?.timeoutMs,
    logger: options.logger,
  });
  return startBackend({
    ...options,
    name: "greeter",
    migrations: greeterMigrations,
    services: [serviceHandlers(GreeterService, createGreeterService({ db: options.db, translator }))],
    onClose: () => translator.close(),
  });
}
