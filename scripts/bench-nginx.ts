// The nginx peers: grpc_pass without auth, and auth_request to scripts/bench-auth-endpoint.ts.
import { spawn, spawnSync } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { connect as netConnect } from "node:net";
import { join } from "node:path";
import { type BenchProcess, freePort, logTail, spawnNode, waitUntil, wrapChild } from "./bench-platform.js";

/** `nginx version: nginx/1.22.1`, or undefined when nginx is not installed. */
export function nginxVersion(): string | undefined {
  const result = spawnSync("nginx", ["-v"], { encoding: "utf8" });
  if (result.error || result.status !== 0) return undefined;
  return `${result.stdout}${result.stderr}`.trim();
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

export interface NginxPeers {
  /** grpc_pass, no auth. */
  plainPort: number;
  /** auth_request + grpc_pass. */
  authPort: number;
  nginx: BenchProcess;
  verifier: BenchProcess;
  stop(): Promise<void>;
}

export interface NginxPeerOptions {
  root: string;
  workDir: string;
  greeterPort: number;
  /** The auth service, whose JWKS the auth_request endpoint reads. */
  authServicePort: number;
  env: NodeJS.ProcessEnv;
}

/** Starts the auth_request endpoint and nginx from bench/nginx.conf.template. */
export async function startNginxPeers(options: NginxPeerOptions): Promise<NginxPeers> {
  const prefix = join(options.workDir, "nginx");
  mkdirSync(prefix, { recursive: true });
  const verifierPort = await freePort();
  const verifier = spawnNode({
    name: "nginx auth_request endpoint",
    args: ["--import", "tsx", join(options.root, "scripts/bench-auth-endpoint.ts")],
    env: {
      ...options.env,
      BENCH_VERIFIER_PORT: String(verifierPort),
      BENCH_AUTH_URL: `http://127.0.0.1:${options.authServicePort}`,
    },
    logFile: join(options.workDir, "auth-endpoint.log"),
    cwd: options.root,
  });
  const started: BenchProcess[] = [verifier];
  const stop = () => Promise.all(started.map((p) => p.stop())).then(() => {});
  try {
    await waitUntil(verifier.name, () => Promise.resolve(readFileSync(verifier.logFile, "utf8").includes("listening")), verifier);
    const plainPort = await freePort();
    const authPort = await freePort();
    const values: Record<string, string | number> = {
      PREFIX: prefix,
      NGINX_PORT: plainPort,
      NGINX_AUTH_PORT: authPort,
      GREETER_PORT: options.greeterPort,
      VERIFIER_PORT: verifierPort,
    };
    const template = readFileSync(join(options.root, "bench/nginx.conf.template"), "utf8");
    const config = template.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
      if (!(key in values)) throw new Error(`bench/nginx.conf.template: unknown placeholder {{${key}}}`);
      return String(values[key]);
    });
    const configFile = join(prefix, "nginx.conf");
    writeFileSync(configFile, config);
    const logFile = join(options.workDir, "nginx.log");
    const fd = openSync(logFile, "a");
    const child = spawn("nginx", ["-p", prefix, "-c", configFile], { stdio: ["ignore", fd, fd] });
    closeSync(fd);
    // SIGQUIT is nginx's graceful shutdown; wrapChild sends SIGTERM (fast shutdown), fine for a benchmark.
    const nginx = wrapChild("nginx", child, logFile);
    started.push(nginx);
    const ready = async () => (await portOpen(plainPort)) && (await portOpen(authPort));
    await waitUntil("nginx", ready, nginx, 15_000).catch((error: Error) => {
      throw new Error(`${error.message}\n${logTail(join(prefix, "error.log"))}`);
    });
    return { plainPort, authPort, nginx, verifier, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
