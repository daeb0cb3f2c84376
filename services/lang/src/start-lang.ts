import { fileURLToPath } from "node:url";
import { LanguageService } from "@portico/gen/portico/lang/v1/lang_pb.js";
import { type Backend, type BackendDependencies, serviceHandlers, startBackend } from "@portico/kit";
import { createLangService } from "./lang-service.js";

export type LangOptions = BackendDependencies;
export type LangServer = Backend;

export const langMigrations = fileURLToPath(new URL("../migrations", import.meta.url));

/** Migrates the lang database and serves LanguageService over h2c. */
export function startLang(options: LangOptions): Promise<LangServer> {
  return startBackend({
    ...options,
    name: "lang",
    migrations: langMigrations,
    services: [serviceHandlers(LanguageService, createLangService({ db: options.db }))],
  });
}
