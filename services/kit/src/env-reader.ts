import { ConfigError } from "./config-error.js";

export type Env = Record<string, string | undefined>;

/** Typed, validated reads of environment variables; every failure is a one-line ConfigError. */
export interface EnvReader {
  string(name: string, fallback: string): string;
  optionalString(name: string): string | undefined;
  port(name: string, fallback: number): number;
  int(name: string, fallback: number, range: { min: number; max: number }): number;
  url(name: string, protocols: readonly string[]): URL | undefined;
  /** A comma-separated list of URLs (`http://a:1,http://b:1`), each checked as `url` checks one. */
  urls(name: string, protocols: readonly string[]): URL[] | undefined;
  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T;
  bool(name: string, fallback: boolean): boolean;
}

function parseUrl(name: string, value: string, protocols: readonly string[]): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${name}="${value}" is not a URL: expected ${protocols.map((p) => `${p}//…`).join(" or ")}`);
  }
  if (!protocols.includes(url.protocol)) {
    throw new ConfigError(`${name}="${value}" has protocol ${url.protocol}: expected ${protocols.join(" or ")}`);
  }
  return url;
}

export function createEnvReader(env: Env = process.env): EnvReader {
  const raw = (name: string) => {
    const value = env[name];
    return value === undefined || value.trim() === "" ? undefined : value.trim();
  };
  const int = (name: string, fallback: number, range: { min: number; max: number }) => {
    const value = raw(name);
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!/^-?\d+$/.test(value) || n < range.min || n > range.max) {
      throw new ConfigError(`${name}="${value}" is not valid: expected a whole number from ${range.min} to ${range.max}`);
    }
    return n;
  };
  return {
    string: (name, fallback) => raw(name) ?? fallback,
    optionalString: raw,
    int,
    port: (name, fallback) => int(name, fallback, { min: 0, max: 65535 }),
    url(name, protocols) {
      const value = raw(name);
      return value === undefined ? undefined : parseUrl(name, value, protocols);
    },
    urls(name, protocols) {
      const value = raw(name);
      return value?.split(",").map((part) => parseUrl(name, part.trim(), protocols));
    },
    oneOf(name, allowed, fallback) {
      const value = raw(name);
      if (value === undefined) return fallback;
      if (!(allowed as readonly string[]).includes(value)) {
        throw new ConfigError(`${name}="${value}" is not valid: expected one of ${allowed.join(", ")}`);
      }
      return value as (typeof allowed)[number];
    },
    bool(name, fallback) {
      const value = raw(name)?.toLowerCase();
      if (value === undefined) return fallback;
      if (["1", "true", "yes", "on"].includes(value)) return true;
      if (["0", "false", "no", "off"].includes(value)) return false;
      throw new ConfigError(`${name}="${env[name]}" is not valid: expected true or false`);
    },
  };
}
