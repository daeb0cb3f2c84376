// The soak's platform: two replicas of every service from the production build, each on its own
// free port, all on one PostgreSQL; two gateways on one Redis, each listing both replicas of every
// backend. A replica can be killed (SIGKILL) and started again on the same port.
import { join } from "node:path";
import { ensureLocalKeys, platform } from "@portico/kit";
import { answers200 } from "./answers-200.js";
import { type BenchProcess, freePort, spawnNode, waitUntil } from "./bench-platform.js";

export type SoakKind = "gateway" | "auth" | "greeter" | "lang";
export const soakKinds: SoakKind[] = ["gateway", "auth", "greeter", "lang"];

export interface SoakReplica {
  readonly kind: SoakKind;
  readonly index: number;
  readonly name: string;
  /** The service's port (the gateway's public port). */
  readonly port: number;
  /** Where readiness is asked (the gateway's admin port). */
  readonly readyUrl: string;
  readonly logFile: string;
  /** Whether it is running and answered its readiness check since it last started. */
  up(): boolean;
  /** Whether it ended on its own after it was ready (not killed or stopped by the soak). */
  crashed(): boolean;
  /** SIGKILL; resolves once the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM (the process drains and flushes its log), SIGKILL after 15 s. */
  stop(): Promise<void>;
  /** Starts it again on the same port and waits until it is ready. */
  start(): Promise<void>;
}

export interface SoakPlatformOptions {
  root: string;
  dataDir: string;
  logDir: string;
  databaseUrl: string;
  redisUrl: string;
}

export interface SoakPlatform {
  replicas: SoakReplica[];
  of(kind: SoakKind): SoakReplica[];
  /** The gateways' public URLs. */
  gatewayUrls: string[];
  stop(): Promise<void>;
}

const protoServices: Record<Exclude<SoakKind, "gateway">, string> = {
  auth: "portico.auth.v1.AuthService",
  greeter: "portico.greeter.v1.GreeterService",
  lang: "portico.lang.v1.LanguageService",
};

export async function startSoakPlatform(options: SoakPlatformOptions): Promise<SoakPlatform> {
  ensureLocalKeys(options.dataDir, soakKinds);
  const ports = new Map<string, number>();
  for (const kind of soakKinds) for (const i of [0, 1]) ports.set(`${kind}-${i}`, await freePort());
  const adminPorts = [await freePort(), await freePort()];
  const url = (kind: SoakKind, i: number) => `http://127.0.0.1:${ports.get(`${kind}-${i}`)}`;
  const upstreams = (["auth", "greeter", "lang"] as const)
    .map((kind) => `${protoServices[kind]}=${url(kind, 0)};${url(kind, 1)}`)
    .join(",");
  const common: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: "production",
    LOG_LEVEL: process.env.LOG_LEVEL ?? "warn",
    PORTICO_DATA_DIR: options.dataDir,
    DATABASE_URL: options.databaseUrl,
    // Sign-ups come from many client addresses (x-forwarded-for from the soak, a trusted proxy).
    AUTH_SIGNUPS_PER_IP_PER_HOUR: "1000000",
  };
  const envOf = (kind: SoakKind, i: number): NodeJS.ProcessEnv => {
    const port = String(ports.get(`${kind}-${i}`));
    switch (kind) {
      case "gateway":
        return {
          ...common,
          GATEWAY_PORT: port,
          GATEWAY_HOST: "127.0.0.1",
          ADMIN_PORT: String(adminPorts[i]),
          GATEWAY_UPSTREAMS: upstreams,
          GATEWAY_TRUSTED_PROXIES: "127.0.0.1,::1",
          REDIS_URL: options.redisUrl,
        };
      case "greeter":
        // Each greeter knows both lang replicas: kit's service client spreads calls over them and
        // passes over one that answered unavailable.
        return { ...common, GREETER_PORT: port, LANG_URL: `${url("lang", i)},${url("lang", 1 - i)}` };
      default:
        return { ...common, [`${kind.toUpperCase()}_PORT`]: port };
    }
  };
  const replicas: SoakReplica[] = [];
  for (const kind of soakKinds) {
    for (const index of [0, 1]) {
      const name = `${kind}-${index}`;
      const port = ports.get(name) as number;
      const readyUrl = kind === "gateway" ? `http://127.0.0.1:${adminPorts[index]}/readyz` : `${url(kind, index)}/readyz`;
      let proc: BenchProcess | undefined;
      let ready = false;
      const logFile = join(options.logDir, `${name}.log`);
      replicas.push({
        kind,
        index,
        name,
        port,
        readyUrl,
        logFile,
        up: () => ready && proc !== undefined && !proc.exited(),
        crashed: () => ready && proc?.exited() === true,
        async kill() {
          ready = false;
          if (!proc || proc.exited()) return;
          process.kill(proc.pid, "SIGKILL");
          await waitUntil(`${name} gone`, async () => proc?.exited() ?? true);
        },
        async stop() {
          ready = false;
          await proc?.stop();
        },
        async start() {
          ready = false;
          const args = [
            // As each runs everywhere (portico.services.json).
            ...(kind === "gateway" ? platform.gateway.nodeFlags : platform.serviceNodeFlags),
            join(options.root, `services/${kind}/dist/main.js`),
          ];
          proc = spawnNode({
            name,
            args,
            env: envOf(kind, index),
            logFile: join(options.logDir, `${name}.log`),
            cwd: options.root,
          });
          await waitUntil(name, () => answers200(readyUrl), proc);
          ready = true;
        },
      });
    }
  }
  const of = (kind: SoakKind) => replicas.filter((r) => r.kind === kind);
  // Backends first, so the gateways' first health checks find them serving.
  await Promise.all(of("auth").map((r) => r.start()));
  await Promise.all([...of("lang"), ...of("greeter")].map((r) => r.start()));
  await Promise.all(of("gateway").map((r) => r.start()));
  return {
    replicas,
    of,
    gatewayUrls: of("gateway").map((g) => url("gateway", g.index)),
    async stop() {
      await Promise.all(replicas.map((r) => r.stop()));
    },
  };
}
