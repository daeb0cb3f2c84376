import { Resolver } from "node:dns";
import { readFileSync } from "node:fs";
import { ConfigError } from "@portico/kit";
import type { H2ServerOptions } from "./h2/index.js";
import { trustedProxyError } from "./trusted-proxies.js";

/** What an upstream speaks. `connect`: a Connect server that also takes gRPC and gRPC-Web (connect-es, connect-go). */
export type UpstreamProtocol = "connect" | "grpc" | "grpc-web";
export const upstreamProtocols: readonly UpstreamProtocol[] = ["connect", "grpc", "grpc-web"];

/** The most HTTP/2 connections the gateway keeps to one upstream address. */
export const maxConnectionsPerTarget = 64;
/**
 * The HTTP/2 connections the gateway keeps to one upstream address unless its entry says otherwise.
 * More than one: a node service handles the streams of one connection in batches (every call a read
 * brought, then every answer in one write), so with all calls on one connection the service and the
 * gateway take turns instead of working at once, and the service holds a whole batch alive through
 * its collections. Four connections carried 5–15 % more unary calls through the greeter than one and
 * cost the greeter less per call (bench/README.md, session 20); nginx keeps one per call in flight.
 * Streaming calls share the first connection that can take them (`UpstreamTarget.session`).
 */
export const defaultConnectionsPerTarget = 4;

export interface UpstreamConfig {
  /** Every address that serves the service: `http://host:port` (h2c) or `https://host[:port]` (TLS). */
  targets: string[];
  protocol: UpstreamProtocol;
  /** The upstream understands JSON messages (default: true for connect, false for grpc and grpc-web). */
  json?: boolean;
  /**
   * HTTP/2 connections kept to each address (default `defaultConnectionsPerTarget`, 4). More spread
   * the calls over an upstream that runs several processes behind one port (Node cluster,
   * SO_REUSEPORT); one connection goes to one process. Beyond these, a connection is added whenever
   * all are at the upstream's concurrent-stream limit.
   */
  connections?: number;
}

/**
 * The public port's HTTP/2 limits against abusive clients (a reload applies them to new
 * connections; the engine's H2ServerOptions say what each does and its default; the README has
 * the table).
 */
export type GatewayHttp2Limits = Pick<
  H2ServerOptions,
  | "resetBudget"
  | "settingsBudget"
  | "maxContinuationFrames"
  | "maxQueuedControlFrames"
  | "maxConnectionBufferBytes"
  | "stallTimeoutMs"
> & {
  /** Streams one connection may have open (default 128). */
  maxConcurrentStreams?: number;
  /**
   * Connections of one client address the gateway may close for abuse at once, refilled at
   * `perSecond` (default burst 10, 1 per second); beyond it the address's new connections are held
   * unread and dropped (AddressAdmissionOptions).
   */
  abuseBudget?: { burst: number; perSecond: number };
  /** Connections one client address may have open at once (default 4096). */
  maxConnectionsPerAddress?: number;
};

/** The gateway's config file (`GATEWAY_CONFIG`), every field optional. */
export interface GatewayConfig {
  /** Fully-qualified service name → upstream. */
  upstreams: Record<string, UpstreamConfig>;
  /** Browser origins allowed by CORS (`*` for any). */
  corsOrigins?: string[];
  /**
   * Peers whose `x-forwarded-*` headers are believed: IP addresses and CIDR ranges, IPv4 or IPv6
   * (`"10.0.0.2"`, `"10.0.0.0/8"`, `"::1"`, `"fd00::/8"`).
   */
  trustedProxies?: string[];
  /** Deadline of calls whose policy sets none, in ms. */
  defaultTimeoutMs?: number;
  /** Largest message accepted when the policy sets none, in bytes. */
  defaultMaxRequestBytes?: number;
  /** Largest response message the gateway assembles when it translates a call (default 16 MiB), in bytes. */
  maxResponseMessageBytes?: number;
  /** Longest a verified token is trusted without asking the auth service again, in ms. */
  authCacheTtlMs?: number;
  /** The auth cache TTL while the revocation stream is down, in ms. */
  authDegradedTtlMs?: number;
  /** Timeout of one Authenticate call, in ms. */
  authTimeoutMs?: number;
  /** When the shared rate-limit store (Redis) is down: let calls through (`open`) or refuse them (`closed`). */
  rateLimitFailure?: "open" | "closed";
  /** The public port's HTTP/2 limits. */
  http2?: GatewayHttp2Limits;
  /** How targets given by host name are followed in DNS. */
  dns?: GatewayDnsConfig;
  /** REST answers name fields as the .proto does (`display_name`), not as protojson (`displayName`); default false. */
  restUseProtoNames?: boolean;
  /**
   * Also hand backends the verified user as plain, unsigned `x-user-id`, `x-user-tier`, `x-user-roles`
   * and `x-session-id` headers, beside the signed `x-portico-identity` (default false). For the logs
   * of a backend that does not verify the assertion; nothing may trust them for access. Read at start.
   */
  identityClaimHeaders?: boolean;
}

/** Upstream discovery by DNS (targets given by host name; literal IPs are used as they are). */
export interface GatewayDnsConfig {
  /** Between two resolutions of each host name, in ms (default 5000); also soon after a connection fails. */
  refreshMs?: number;
  /** DNS servers asked for A and AAAA records (`"10.96.0.10"`, `"127.0.0.1:5353"`); default the system's resolver. */
  servers?: string[];
}

/** Default of `dns.refreshMs`. */
export const defaultDnsRefreshMs = 5000;

function fail(where: string, message: string): never {
  throw new ConfigError(`${where}: ${message}`);
}

function parseTarget(text: string, where: string): string {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    fail(where, `"${text}" is not a URL; expected http://host:port or https://host[:port]`);
  }
  const secure = url.protocol === "https:";
  if ((!secure && (url.protocol !== "http:" || !url.port)) || url.pathname !== "/" || url.search || url.username) {
    fail(where, `"${text}" is not valid; expected http://host:port (h2c) or https://host[:port] (TLS), no path`);
  }
  return `${url.protocol}//${url.host}`;
}

function parseProtocol(text: string, where: string): UpstreamProtocol {
  if (!(upstreamProtocols as readonly string[]).includes(text)) {
    fail(where, `protocol "${text}" is not valid; expected one of ${upstreamProtocols.join(", ")}`);
  }
  return text as UpstreamProtocol;
}

const serviceName = /^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+$/;

function checkServiceName(name: string, where: string): void {
  if (!serviceName.test(name)) fail(where, `"${name}" is not a fully-qualified service name like pkg.v1.FooService`);
}

/** Reads one upstream entry: a URL, a list of URLs, or `{ targets, protocol, json, connections }`. */
function parseUpstream(value: unknown, where: string): UpstreamConfig {
  if (typeof value === "string") return { targets: [parseTarget(value, where)], protocol: "connect" };
  if (Array.isArray(value)) {
    if (value.length === 0) fail(where, "needs at least one target");
    return { targets: value.map((t, i) => parseTarget(String(t), `${where}[${i}]`)), protocol: "connect" };
  }
  if (typeof value !== "object" || value === null) fail(where, "expected a URL, a list of URLs or { targets, protocol }");
  const entry = value as Record<string, unknown>;
  for (const key of Object.keys(entry)) {
    if (!["targets", "protocol", "json", "connections"].includes(key)) {
      fail(where, `unknown field "${key}" (allowed: targets, protocol, json, connections)`);
    }
  }
  const targets = typeof entry.targets === "string" ? [entry.targets] : entry.targets;
  if (!Array.isArray(targets) || targets.length === 0) fail(`${where}.targets`, "needs at least one http://host:port");
  const protocol = entry.protocol === undefined ? "connect" : parseProtocol(String(entry.protocol), `${where}.protocol`);
  if (entry.json !== undefined && typeof entry.json !== "boolean") fail(`${where}.json`, "expected true or false");
  const connections = optionalInt(entry.connections, `${where}.connections`, 1, maxConnectionsPerTarget);
  return {
    targets: targets.map((t, i) => parseTarget(String(t), `${where}.targets[${i}]`)),
    protocol,
    ...(entry.json === undefined ? {} : { json: entry.json as boolean }),
    ...(connections === undefined ? {} : { connections }),
  };
}

function optionalInt(value: unknown, where: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    fail(where, `${JSON.stringify(value)} is not valid; expected a whole number from ${min} to ${max}`);
  }
  return value;
}

function optionalStrings(value: unknown, where: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) fail(where, "expected a list of strings");
  return value as string[];
}

function optionalTrustedProxies(value: unknown, where: string): string[] | undefined {
  const entries = optionalStrings(value, where);
  entries?.forEach((entry, i) => {
    const error = trustedProxyError(entry);
    if (error !== undefined) fail(`${where}[${i}]`, error);
  });
  return entries?.map((entry) => entry.trim());
}

const http2Keys = [
  "maxConcurrentStreams",
  "resetBudget",
  "settingsBudget",
  "maxContinuationFrames",
  "maxQueuedControlFrames",
  "maxConnectionBufferBytes",
  "stallTimeoutMs",
  "abuseBudget",
  "maxConnectionsPerAddress",
];

function fields(value: unknown, where: string, allowed: string[]): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) fail(where, "expected a JSON object");
  const raw = value as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!allowed.includes(key)) fail(where, `unknown field "${key}" (allowed: ${allowed.join(", ")})`);
  }
  return raw;
}

function optionalBudget(value: unknown, where: string): { burst: number; perSecond: number } | undefined {
  if (value === undefined) return undefined;
  const raw = fields(value, where, ["burst", "perSecond"]);
  const burst = optionalInt(raw.burst, `${where}.burst`, 1, 1_000_000);
  const perSecond = optionalInt(raw.perSecond, `${where}.perSecond`, 1, 1_000_000);
  if (burst === undefined || perSecond === undefined) fail(where, "expected both burst and perSecond");
  return { burst, perSecond };
}

function optionalHttp2(value: unknown, where: string): GatewayHttp2Limits | undefined {
  if (value === undefined) return undefined;
  const raw = fields(value, where, http2Keys);
  const limits: GatewayHttp2Limits = {
    maxConcurrentStreams: optionalInt(raw.maxConcurrentStreams, `${where}.maxConcurrentStreams`, 1, 100_000),
    resetBudget: optionalBudget(raw.resetBudget, `${where}.resetBudget`),
    settingsBudget: optionalBudget(raw.settingsBudget, `${where}.settingsBudget`),
    maxContinuationFrames: optionalInt(raw.maxContinuationFrames, `${where}.maxContinuationFrames`, 1, 10_000),
    maxQueuedControlFrames: optionalInt(raw.maxQueuedControlFrames, `${where}.maxQueuedControlFrames`, 1, 1_000_000),
    maxConnectionBufferBytes: optionalInt(raw.maxConnectionBufferBytes, `${where}.maxConnectionBufferBytes`, 65_536, 2 ** 31 - 1),
    stallTimeoutMs: optionalInt(raw.stallTimeoutMs, `${where}.stallTimeoutMs`, 1, 86_400_000),
    abuseBudget: optionalBudget(raw.abuseBudget, `${where}.abuseBudget`),
    maxConnectionsPerAddress: optionalInt(raw.maxConnectionsPerAddress, `${where}.maxConnectionsPerAddress`, 1, 1_000_000),
  };
  for (const key of Object.keys(limits) as (keyof GatewayHttp2Limits)[]) {
    if (limits[key] === undefined) delete limits[key];
  }
  return limits;
}

function optionalDns(value: unknown, where: string): GatewayDnsConfig | undefined {
  if (value === undefined) return undefined;
  const raw = fields(value, where, ["refreshMs", "servers"]);
  const refreshMs = optionalInt(raw.refreshMs, `${where}.refreshMs`, 10, 3_600_000);
  const servers = optionalStrings(raw.servers, `${where}.servers`);
  servers?.forEach((server, i) => {
    try {
      new Resolver().setServers([server]);
    } catch {
      fail(
        `${where}.servers[${i}]`,
        `"${server}" is not valid; expected an IP address with an optional port, like 10.96.0.10 or 127.0.0.1:5353`,
      );
    }
  });
  return {
    ...(refreshMs === undefined ? {} : { refreshMs }),
    ...(servers === undefined ? {} : { servers }),
  };
}

const configKeys = [
  "upstreams",
  "corsOrigins",
  "trustedProxies",
  "defaultTimeoutMs",
  "defaultMaxRequestBytes",
  "maxResponseMessageBytes",
  "authCacheTtlMs",
  "authDegradedTtlMs",
  "authTimeoutMs",
  "rateLimitFailure",
  "http2",
  "dns",
  "restUseProtoNames",
  "identityClaimHeaders",
];

/** Validates a parsed config file; every error names the file and the field. */
export function parseGatewayConfig(json: unknown, where = "gateway config"): GatewayConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json)) fail(where, "expected a JSON object");
  const raw = json as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (key.startsWith("$")) continue;
    if (!configKeys.includes(key)) fail(where, `unknown field "${key}" (allowed: ${configKeys.join(", ")})`);
  }
  const upstreams: Record<string, UpstreamConfig> = {};
  const rawUpstreams = raw.upstreams ?? {};
  if (typeof rawUpstreams !== "object" || rawUpstreams === null || Array.isArray(rawUpstreams)) {
    fail(`${where}: upstreams`, "expected an object of service name → upstream");
  }
  for (const [service, value] of Object.entries(rawUpstreams)) {
    checkServiceName(service, `${where}: upstreams`);
    upstreams[service] = parseUpstream(value, `${where}: upstreams["${service}"]`);
  }
  const failure = raw.rateLimitFailure;
  if (failure !== undefined && failure !== "open" && failure !== "closed") {
    fail(`${where}: rateLimitFailure`, `${JSON.stringify(failure)} is not valid; expected "open" or "closed"`);
  }
  for (const key of ["restUseProtoNames", "identityClaimHeaders"] as const) {
    if (raw[key] !== undefined && typeof raw[key] !== "boolean") {
      fail(`${where}: ${key}`, `${JSON.stringify(raw[key])} is not valid; expected true or false`);
    }
  }
  const config: GatewayConfig = {
    upstreams,
    corsOrigins: optionalStrings(raw.corsOrigins, `${where}: corsOrigins`),
    trustedProxies: optionalTrustedProxies(raw.trustedProxies, `${where}: trustedProxies`),
    defaultTimeoutMs: optionalInt(raw.defaultTimeoutMs, `${where}: defaultTimeoutMs`, 1, 86_400_000),
    defaultMaxRequestBytes: optionalInt(raw.defaultMaxRequestBytes, `${where}: defaultMaxRequestBytes`, 1, 2 ** 31 - 1),
    maxResponseMessageBytes: optionalInt(raw.maxResponseMessageBytes, `${where}: maxResponseMessageBytes`, 1, 2 ** 31 - 1),
    authCacheTtlMs: optionalInt(raw.authCacheTtlMs, `${where}: authCacheTtlMs`, 0, 86_400_000),
    authDegradedTtlMs: optionalInt(raw.authDegradedTtlMs, `${where}: authDegradedTtlMs`, 0, 86_400_000),
    authTimeoutMs: optionalInt(raw.authTimeoutMs, `${where}: authTimeoutMs`, 1, 600_000),
    rateLimitFailure: failure as "open" | "closed" | undefined,
    http2: optionalHttp2(raw.http2, `${where}: http2`),
    dns: optionalDns(raw.dns, `${where}: dns`),
    restUseProtoNames: raw.restUseProtoNames as boolean | undefined,
    identityClaimHeaders: raw.identityClaimHeaders as boolean | undefined,
  };
  for (const key of Object.keys(config) as (keyof GatewayConfig)[]) {
    if (config[key] === undefined) delete config[key];
  }
  return config;
}

/** Reads and validates the config file at `path`. */
export function loadGatewayConfigFile(path: string): GatewayConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ConfigError(`GATEWAY_CONFIG: cannot read ${path}: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`GATEWAY_CONFIG: ${path} is not valid JSON: ${(error as Error).message}`);
  }
  return parseGatewayConfig(json, path);
}

/**
 * Parses `GATEWAY_UPSTREAMS`: `pkg.v1.FooService=http://a:9000;http://b:9000@grpc,pkg.v1.BarService=http://c:9100`
 * (targets separated by `;`, the protocol after `@`, default connect).
 */
export function parseUpstreamsEnv(text: string, where = "GATEWAY_UPSTREAMS"): Record<string, UpstreamConfig> {
  const upstreams: Record<string, UpstreamConfig> = {};
  for (const part of text.split(",")) {
    const entry = part.trim();
    if (entry === "") continue;
    const eq = entry.indexOf("=");
    if (eq < 0) fail(where, `"${entry}" is not valid; expected <service>=<url>[;<url>…][@connect|grpc|grpc-web]`);
    const service = entry.slice(0, eq).trim();
    checkServiceName(service, where);
    let rest = entry.slice(eq + 1).trim();
    let protocol: UpstreamProtocol = "connect";
    const at = rest.lastIndexOf("@");
    if (at >= 0) {
      protocol = parseProtocol(rest.slice(at + 1).trim(), `${where} (${service})`);
      rest = rest.slice(0, at);
    }
    const targets = rest
      .split(";")
      .map((t) => t.trim())
      .filter((t) => t !== "");
    if (targets.length === 0) fail(where, `${service} has no target`);
    upstreams[service] = { targets: targets.map((t) => parseTarget(t, `${where} (${service})`)), protocol };
  }
  return upstreams;
}

/**
 * Parses `GATEWAY_TRUSTED_PROXIES`: addresses and CIDR ranges separated by commas
 * (`10.0.0.0/8,fd00::/8,192.168.1.4`); it replaces the config file's `trustedProxies`.
 */
export function parseTrustedProxiesEnv(text: string, where = "GATEWAY_TRUSTED_PROXIES"): string[] {
  const entries = text
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  return optionalTrustedProxies(entries, where) ?? [];
}
