import { ConfigError } from "./config-error.js";
import { createEnvReader, type Env } from "./env-reader.js";
import { type PlatformDefinition, readPlatformDefinition } from "./platform-definition.js";

/** The platform definition (`portico.services.json`), read once. */
export const platform: PlatformDefinition = readPlatformDefinition();

/**
 * The default port of each service of the platform, from `portico.services.json`: the one table
 * `npm start`, the services' own settings and the service client fall back on. `<SERVICE>_PORT`
 * and `<SERVICE>_URL` override.
 */
export const servicePorts: Readonly<Record<string, number>> = Object.freeze({
  gateway: platform.gateway.port,
  ...Object.fromEntries(platform.services.map((s) => [s.name, s.port])),
});

const NAME = /^[a-z][a-z0-9-]{0,62}$/;

/** Throws a message naming the bad service name and the allowed form. */
export function checkServiceName(name: string, where: string): string {
  if (typeof name !== "string" || !NAME.test(name)) {
    throw new ConfigError(
      `${where}: service name "${name}" is not valid; expected lower-case letters, digits and "-", starting with a letter`,
    );
  }
  return name;
}

/**
 * The name of the deployable serving a proto service: the last package segment that is not a
 * version (`portico.lang.v1.LanguageService` → `lang`). It is the `aud` of tokens sent to it.
 */
export function serviceNameOf(typeName: string): string {
  const parts = typeName.split(".").slice(0, -1);
  const name = parts.reverse().find((p) => !/^v\d+(?:(?:alpha|beta)\d*)?$/.test(p));
  if (!name) throw new ConfigError(`${typeName}: cannot derive a service name from its package; name it explicitly`);
  return checkServiceName(name.toLowerCase(), typeName);
}

/**
 * Where service `name` answers: `<NAME>_URL` (http:// for h2c, https:// for TLS; several replicas as a
 * comma-separated list, `http://lang-0:8083,http://lang-1:8083`), otherwise
 * `http://127.0.0.1:<NAME>_PORT`, otherwise the port in {@link servicePorts}.
 */
export function serviceUrls(name: string, env: Env = process.env): string[] {
  const read = createEnvReader(env);
  const upper = name.toUpperCase().replaceAll("-", "_");
  const urls = read.urls(`${upper}_URL`, ["http:", "https:"]);
  if (urls) return [...new Set(urls.map((url) => url.origin))];
  const fallback = servicePorts[name];
  const port = read.port(`${upper}_PORT`, fallback ?? 0);
  if (port === 0) throw new ConfigError(`no address for service "${name}": set ${upper}_URL (e.g. http://${name}:9000)`);
  return [`http://127.0.0.1:${port}`];
}
