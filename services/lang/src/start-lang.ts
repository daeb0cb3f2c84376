import { fileURLToPath } from "node:url";
import { LanguageService } from "@portico/gen/portico/lang/v1/lang_pb.js";
import { type Database, type Logger, migrate, type ServiceIdentity, startServiceServer } from "@portico/kit";
import { createLangService } from "./lang-service.js";

export interface LangOptions {
  /** 0 or unset: a free port. */
  port?: number;
  host?: string;
  db: Database;
  logger: Logger;
  /** The lang service's key pair and the trust bundle (service `lang`). */
  identity: ServiceIdentity;
  /** How long calls in flight may take to finish on close (default 10 s). */
  shutdownGraceMs?: number;
}

export interface LangServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export const langMigrations = fileURLToPath(new URL("../migrations", import.meta.url));

/** Migrates the lang database and serves LanguageService over h2c. */
export async function startLang(options: LangOptions): Promise<LangServer> {
  await migrate(options.db, langMigrations);
  const server = await startServiceServer({
    name: "lang",
    port: options.port ?? 0,
    host: options.host,
    logger: options.logger,
    shutdownGraceMs: options.shutdownGraceMs,
    identity: options.identity,
    routes: (router) => router.service(LanguageService, createLangService({ db: options.db })),
  });
  server.health.set(LanguageService.typeName, true);
  return {
    url: server.url,
    port: server.port,
    close: () => server.close(),
  };
}
