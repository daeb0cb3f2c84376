import { resolve } from "node:path";
import { createEnvReader, type Env } from "./env-reader.js";
import { servicePorts } from "./service-directory.js";

/** What every service reads from its environment. */
export interface ServiceConfig {
  /** The service's own h2c port. */
  port: number;
  host: string;
  /** `postgres://` URL of the service's own database (`npm start` sets it); undefined when unset. */
  databaseUrl?: string;
  /** The platform's data directory (`PORTICO_DATA_DIR`, default `.data`): keys live in `<dataRoot>/keys`. */
  dataRoot: string;
  logLevel: string;
}

/**
 * Reads the settings shared by all services. `<SERVICE>_DATABASE_URL` wins; otherwise
 * `DATABASE_URL` with `_<service>` appended to its database name (`/portico` → `/portico_auth`),
 * so every service owns its database on one server. The port defaults to the service's entry in
 * `servicePorts` (kit's port table).
 */
export function readServiceConfig(
  service: string,
  defaultPort: number = servicePorts[service] ?? 0,
  env: Env = process.env,
): ServiceConfig {
  const read = createEnvReader(env);
  const upper = service.toUpperCase();
  const protocols = ["postgres:", "postgresql:"];
  let databaseUrl = read.url(`${upper}_DATABASE_URL`, protocols)?.toString();
  const shared = read.url("DATABASE_URL", protocols);
  if (!databaseUrl && shared) {
    const base = decodeURIComponent(shared.pathname.slice(1)) || "portico";
    shared.pathname = `/${base}_${service}`;
    databaseUrl = shared.toString();
  }
  const dataRoot = resolve(read.string("PORTICO_DATA_DIR", ".data"));
  return {
    port: read.port(`${upper}_PORT`, defaultPort),
    host: read.string(`${upper}_HOST`, "127.0.0.1"),
    databaseUrl,
    dataRoot,
    logLevel: read.oneOf("LOG_LEVEL", ["trace", "debug", "info", "warn", "error", "fatal", "silent"], "info"),
  };
}
