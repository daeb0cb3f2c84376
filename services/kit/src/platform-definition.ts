import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ConfigError } from "./config-error.js";

/** One backend service of the platform, as `portico.services.json` declares it. */
export interface PlatformService {
  name: string;
  /** Its default h2c port (`<NAME>_PORT` overrides). */
  port: number;
  /** The fully-qualified proto services it serves (`portico.greeter.v1.GreeterService`): the gateway routes them to it. */
  protoServices: string[];
  /** Its own database's name, if it has one. */
  database?: string;
  /** The services it calls directly (kit's service client): their addresses are handed to it in deployments. */
  calls: string[];
}

/** The gateway as `portico.services.json` declares it. */
export interface PlatformGateway {
  port: number;
  adminPort: number;
  /**
   * The node flags the gateway process runs with, before its entry point, wherever it runs: `npm
   * start`, the bench and the soak, the Dockerfile, docker-compose.yml and the Kubernetes manifests
   * all take them from here (empty when the file names none).
   */
  nodeFlags: string[];
}

/** The whole platform: the gateway and every backend, in the file's order. */
export interface PlatformDefinition {
  gateway: PlatformGateway;
  services: PlatformService[];
  /**
   * The node flags every backend service process runs with, before its entry point, wherever it
   * runs (`npm start`, the bench and the soak, docker-compose.yml and the Kubernetes manifests take
   * them from here; empty when the file names none).
   */
  serviceNodeFlags: string[];
}

/** `portico.services.json` at the repository root (two levels above kit's `src/` and `dist/`). */
export const platformDefinitionPath = fileURLToPath(new URL("../../../portico.services.json", import.meta.url));

const NAME = /^[a-z][a-z0-9]{0,30}$/;
/** One node or V8 option (`--single-threaded-gc`, `--max-semi-space-size=4`): no space or quote, as it goes into a Dockerfile, compose and Kubernetes command as is. */
const NODE_FLAG = /^--[a-z][a-z0-9-]*(=[A-Za-z0-9._:,/-]+)?$/;
const PROTO_SERVICE = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\.[A-Z][A-Za-z0-9]*$/;

/** Validates the definition's JSON: every problem is a message naming the field and what is allowed. */
export function parsePlatformDefinition(json: unknown, where = "portico.services.json"): PlatformDefinition {
  const fail = (field: string, message: string): never => {
    throw new ConfigError(`${where}: ${field}: ${message}`);
  };
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
  const port = (v: unknown, field: string): number =>
    Number.isInteger(v) && (v as number) > 0 && (v as number) < 65536
      ? (v as number)
      : fail(field, `${JSON.stringify(v)} is not a port (an integer from 1 to 65535)`);
  const strings = (v: unknown, field: string, pattern: RegExp, what: string): string[] => {
    if (v === undefined) return [];
    if (!Array.isArray(v)) return fail(field, "expected an array of strings");
    return v.map((s, i) =>
      typeof s === "string" && pattern.test(s) ? s : fail(`${field}[${i}]`, `${JSON.stringify(s)} is not ${what}`),
    );
  };
  if (!isObject(json)) return fail("(root)", "expected an object with gateway and services");
  const gateway = isObject(json.gateway) ? json.gateway : fail("gateway", "expected { port, adminPort, nodeFlags? }");
  if (!isObject(json.services)) return fail("services", "expected an object of service name → { port, protoServices }");
  const seen = new Map<number, string>();
  const claim = (p: number, owner: string) => {
    const other = seen.get(p);
    if (other) fail(owner, `port ${p} is already ${other}'s`);
    seen.set(p, owner);
    return p;
  };
  const nodeFlag = "one node option (--name or --name=value)";
  const definition: PlatformDefinition = {
    gateway: {
      port: claim(port(gateway.port, "gateway.port"), "gateway.port"),
      adminPort: claim(port(gateway.adminPort, "gateway.adminPort"), "gateway.adminPort"),
      nodeFlags: strings(gateway.nodeFlags, "gateway.nodeFlags", NODE_FLAG, nodeFlag),
    },
    services: Object.entries(json.services).map(([name, raw]) => {
      const field = `services.${name}`;
      if (!NAME.test(name) || name === "gateway") fail(field, "a service name is lower-case letters and digits, not gateway");
      if (!isObject(raw)) return fail(field, "expected { port, protoServices, database?, calls? }");
      const database = raw.database;
      if (database !== undefined && (typeof database !== "string" || !NAME.test(database))) {
        fail(`${field}.database`, `${JSON.stringify(database)} is not a database name (lower-case letters and digits)`);
      }
      return {
        name,
        port: claim(port(raw.port, `${field}.port`), `${field}.port`),
        protoServices: strings(raw.protoServices, `${field}.protoServices`, PROTO_SERVICE, "a fully-qualified proto service"),
        ...(database === undefined ? {} : { database: database as string }),
        calls: strings(raw.calls, `${field}.calls`, NAME, "a service name"),
      };
    }),
    serviceNodeFlags: strings(json.serviceNodeFlags, "serviceNodeFlags", NODE_FLAG, nodeFlag),
  };
  const names = new Set(definition.services.map((s) => s.name));
  for (const service of definition.services) {
    for (const callee of service.calls) {
      if (!names.has(callee)) fail(`services.${service.name}.calls`, `"${callee}" is not a service of the platform`);
    }
  }
  return definition;
}

/** Reads and validates the platform definition (default: the repository's `portico.services.json`). */
export function readPlatformDefinition(path: string = platformDefinitionPath): PlatformDefinition {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ConfigError(`cannot read the platform definition ${path}: ${(error as Error).message}`);
  }
  try {
    return parsePlatformDefinition(JSON.parse(text), path);
  } catch (error) {
    if (error instanceof SyntaxError) throw new ConfigError(`${path} is not valid JSON: ${error.message}`);
    throw error;
  }
}
