import type { DescService } from "@bufbuild/protobuf";
import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import type { Database } from "./database.js";
import type { Logger } from "./logger.js";
import { migrate } from "./migrate.js";
import type { ServiceIdentity } from "./service-identity.js";
import { startServiceServer } from "./service-server.js";

/** What a backend needs from its process (`runBackend`) or from a test (`@portico/testing`). */
export interface BackendDependencies {
  /** 0 or unset: a free port. */
  port?: number;
  host?: string;
  /** The service's own database. */
  db: Database;
  logger: Logger;
  /** The service's key pair and the trust bundle. */
  identity: ServiceIdentity;
  /** How long calls in flight may take to finish on close (default 10 s). */
  shutdownGraceMs?: number;
}

/** One proto service with its handlers, made by {@link serviceHandlers}. */
export interface ServiceHandlers {
  readonly typeName: string;
  register(router: ConnectRouter): void;
}

/** Pairs a generated service with its handlers, type-checked against the descriptor. */
export function serviceHandlers<T extends DescService>(service: T, handlers: Partial<ServiceImpl<T>>): ServiceHandlers {
  return { typeName: service.typeName, register: (router) => router.service(service, handlers) };
}

export interface BackendOptions extends BackendDependencies {
  /** The service's name (logs; its key's `iss`): its entry in `portico.services.json`. */
  name: string;
  /** Its `NNN_name.sql` migrations folder, applied before it listens. */
  migrations?: string;
  /** What it serves; each is marked serving in its gRPC health once it listens. */
  services: ServiceHandlers[];
  /** Runs after the server has closed (clients, timers the handlers hold). */
  onClose?: () => void | Promise<void>;
}

/** A running backend. */
export interface Backend {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Migrates the service's database and serves its handlers over h2c with kit's identity guard and health. */
export async function startBackend(options: BackendOptions): Promise<Backend> {
  if (options.migrations) await migrate(options.db, options.migrations);
  const server = await startServiceServer({
    name: options.name,
    port: options.port ?? 0,
    host: options.host,
    logger: options.logger,
    identity: options.identity,
    shutdownGraceMs: options.shutdownGraceMs,
    routes: (router) => {
      for (const service of options.services) service.register(router);
    },
  });
  for (const service of options.services) server.health.set(service.typeName, true);
  return {
    url: server.url,
    port: server.port,
    async close() {
      await server.close();
      await options.onClose?.();
    },
  };
}
