// Starts the platform's processes from the production build on free ports, for the benchmark.
import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, closeSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ensureLocalKeys, freePort as kitFreePort, platform, startEmbeddedPostgres } from "@portico/kit";
import { answers200 } from "./answers-200.js";

export interface BenchProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Whether the process has ended. */
  exited(): boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it is gone. */
  stop(graceMs?: number): Promise<void>;
}

const handedOut = new Set<number>();

/** A port free right now on 127.0.0.1 (kit's freePort), never the same one twice in a run. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await kitFreePort();
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

/**
 * Runs `attempt` again (with new free ports) when a process found its port taken: between
 * picking a free port and the process binding it, another process's connection may take it.
 */
export async function retryOnPortClash<T>(attempt: () => Promise<T>, tries = 3): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (error) {
      if (i >= tries || !/already in use/.test((error as Error).message)) throw error;
      console.log(`  a port was taken meanwhile; starting again on other ports (${i + 1} of ${tries})`);
    }
  }
}

export interface SpawnOptions {
  name: string;
  /** Arguments after `node` (flags, then the script). */
  args: string[];
  env: NodeJS.ProcessEnv;
  logFile: string;
  cwd: string;
}

/** Starts a node process with its stdout and stderr in `logFile`. */
export function spawnNode(options: SpawnOptions): BenchProcess {
  const fd = openSync(options.logFile, "a");
  const child: ChildProcess = spawn(process.execPath, options.args, {
    cwd: options.cwd,
    env: options.env,
    stdio: ["ignore", fd, fd],
  });
  closeSync(fd);
  return wrapChild(options.name, child, options.logFile);
}

export function wrapChild(name: string, child: ChildProcess, logFile: string): BenchProcess {
  let ended = false;
  const exit = new Promise<void>((resolve) => {
    child.once("exit", () => {
      ended = true;
      resolve();
    });
    child.once("error", () => {
      ended = true;
      resolve();
    });
  });
  if (child.pid === undefined) throw new Error(`${name}: could not start`);
  return {
    name,
    pid: child.pid,
    logFile,
    exited: () => ended,
    async stop(graceMs = 15_000) {
      if (ended) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exit;
      clearTimeout(timer);
    },
  };
}

/** The last lines of a process's log, to explain why it failed. */
export function logTail(logFile: string, lines = 15): string {
  try {
    return readFileSync(logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/** Polls `check` until it is true; fails with the process's log when it ends or time runs out. */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  proc?: BenchProcess,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc?.exited()) throw new Error(`${proc.name} exited while starting:\n${logTail(proc.logFile)}`);
    if (await check()) return;
    if (Date.now() > deadline) {
      throw new Error(`${what} not ready after ${timeoutMs / 1000} s${proc ? `:\n${logTail(proc.logFile)}` : ""}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export interface PlatformPorts {
  auth: number;
  greeter: number;
  gateway: number;
  admin: number;
}

export interface PlatformOptions {
  root: string;
  dataDir: string;
  logDir: string;
  /** The services' PostgreSQL server (each appends its name to the database): DATABASE_URL or the bench's embedded one. */
  databaseUrl: string;
  /**
   * With it, auth, greeter and gateway run under `node --cpu-prof` and each writes
   * `<name>-<cpuProfileStamp>.cpuprofile` here when stopped (--profile-services).
   */
  cpuProfileDir?: string;
  cpuProfileStamp?: string;
}

/** The node flags that make a platform process write a CPU profile, when the options ask for one. */
export function cpuProfileFlags(options: PlatformOptions, name: string): string[] {
  if (options.cpuProfileDir === undefined) return [];
  return [
    "--cpu-prof",
    `--cpu-prof-dir=${options.cpuProfileDir}`,
    `--cpu-prof-name=${name}-${options.cpuProfileStamp}.cpuprofile`,
  ];
}

export interface Platform {
  ports: PlatformPorts;
  env: NodeJS.ProcessEnv;
  auth: BenchProcess;
  greeter: BenchProcess;
  gateway: BenchProcess;
  stop(): Promise<void>;
}

/** The environment every platform process gets: ports and the data dir (its keys/ made by startPlatform). */
export function platformEnv(options: PlatformOptions, ports: PlatformPorts): NodeJS.ProcessEnv {
  return {
    ...process.env,
    NODE_ENV: "production",
    LOG_LEVEL: process.env.LOG_LEVEL ?? "warn",
    PORTICO_DATA_DIR: options.dataDir,
    DATABASE_URL: options.databaseUrl,
    AUTH_PORT: String(ports.auth),
    GREETER_PORT: String(ports.greeter),
    GATEWAY_PORT: String(ports.gateway),
    ADMIN_PORT: String(ports.admin),
    GATEWAY_HOST: "127.0.0.1",
    GATEWAY_UPSTREAMS: [
      `portico.auth.v1.AuthService=http://127.0.0.1:${ports.auth}`,
      `portico.greeter.v1.GreeterService=http://127.0.0.1:${ports.greeter}`,
    ].join(","),
  };
}

/** Starts a gateway process on new free public and admin ports and waits until its /readyz answers 200. */
export function startGatewayProcess(
  options: PlatformOptions,
  upstreams: Pick<PlatformPorts, "auth" | "greeter">,
  name = "gateway",
  nodeFlags: string[] = [],
): Promise<{ gateway: BenchProcess; ports: PlatformPorts }> {
  return retryOnPortClash(async () => {
    const ports = { ...upstreams, gateway: await freePort(), admin: await freePort() };
    const gateway = spawnNode({
      name,
      // With the node flags it runs with everywhere (portico.services.json), then the caller's.
      args: [...platform.gateway.nodeFlags, ...nodeFlags, join(options.root, "services/gateway/dist/main.js")],
      env: platformEnv(options, ports),
      logFile: join(options.logDir, `${name}.log`),
      cwd: options.root,
    });
    try {
      await waitUntil(name, () => answers200(`http://127.0.0.1:${ports.admin}/readyz`), gateway);
    } catch (error) {
      await gateway.stop();
      throw error;
    }
    return { gateway, ports };
  });
}

/** Starts auth, greeter and gateway on free ports and waits until each answers. */
export async function startPlatform(options: PlatformOptions): Promise<Platform> {
  // As `npm start` does: each service's key pair and the trust bundle, under the data dir.
  ensureLocalKeys(options.dataDir, ["auth", "greeter", "gateway"]);
  const started: BenchProcess[] = [];
  const stopAll = () => Promise.all(started.map((p) => p.stop())).then(() => {});
  const service = (name: "auth" | "greeter") =>
    retryOnPortClash(async () => {
      const port = await freePort();
      // Each service reads only its own port; the others are placeholders here.
      const env = platformEnv(options, { auth: port, greeter: port, gateway: 0, admin: 0 });
      const proc = spawnNode({
        name,
        // With the node flags every backend runs with everywhere (portico.services.json).
        args: [
          ...platform.serviceNodeFlags,
          ...cpuProfileFlags(options, name),
          join(options.root, `services/${name}/dist/main.js`),
        ],
        env,
        logFile: join(options.logDir, `${name}.log`),
        cwd: options.root,
      });
      try {
        await waitUntil(name, () => answers200(`http://127.0.0.1:${port}/readyz`), proc);
      } catch (error) {
        await proc.stop();
        throw error;
      }
      started.push(proc);
      return { proc, port };
    });
  try {
    const [auth, greeter] = await Promise.all([service("auth"), service("greeter")]);
    const { gateway, ports } = await startGatewayProcess(
      options,
      { auth: auth.port, greeter: greeter.port },
      "gateway",
      cpuProfileFlags(options, "gateway"),
    );
    started.push(gateway);
    return { ports, env: platformEnv(options, ports), auth: auth.proc, greeter: greeter.proc, gateway, stop: stopAll };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/**
 * The benchmark's database: DATABASE_URL when set, else an embedded PostgreSQL server (npm start's)
 * in `workDir`, whose stop is pushed on `stops`.
 */
export async function benchDatabaseUrl(workDir: string, stops: (() => Promise<void>)[]): Promise<string> {
  if (process.env.DATABASE_URL) return process.env.DATABASE_URL;
  chmodSync(workDir, 0o755); // the server runs as the postgres user when the bench runs as root
  const embedded = await startEmbeddedPostgres({ dataDir: join(workDir, "postgres"), port: 0 });
  stops.push(embedded.stop);
  return Object.assign(new URL(embedded.url), { pathname: "/portico" }).toString();
}
