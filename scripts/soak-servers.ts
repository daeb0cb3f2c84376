// The soak's own PostgreSQL and Redis: real servers from this machine's binaries on free loopback
// ports, so the soak can stop and start them without cutting anyone else's sessions (the shared
// server at 127.0.0.1:5432 serves other test runs). Restarts run asynchronously: the traffic goes on
// while the server is down.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { chmodSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort, waitUntil } from "./bench-platform.js";

const run = promisify(execFile);

/** A server the soak owns: restart() stops it, waits `downMs`, starts it again. */
export interface SoakServer {
  readonly url: string;
  restart(downMs: number): Promise<void>;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function postgresBin(): string {
  const versions = readdirSync("/usr/lib/postgresql").sort((a, b) => Number(a) - Number(b));
  const latest = versions.at(-1);
  if (!latest) throw new Error("soak: no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)");
  return join("/usr/lib/postgresql", latest, "bin");
}

/** initdb and start a cluster under `dir` (as the postgres user when run as root), trust auth, fsync on. */
export async function startSoakPostgres(dir: string): Promise<SoakServer> {
  const bin = postgresBin();
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o777);
  const data = join(dir, "pgdata");
  const port = await freePort();
  const tool = (name: string, args: string[]) =>
    process.getuid?.() === 0 ? run("runuser", ["-u", "postgres", "--", join(bin, name), ...args]) : run(join(bin, name), args);
  await tool("initdb", ["-D", data, "-U", "postgres", "--auth=trust", "--no-sync"]);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200`;
  const start = () => tool("pg_ctl", ["-D", data, "-o", options, "-l", join(dir, "postgres.log"), "-w", "start"]);
  // Fast shutdown: sessions are cut, committed transactions stay.
  const stop = () => tool("pg_ctl", ["-D", data, "-m", "fast", "-w", "stop"]);
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/soak`,
    async restart(downMs) {
      await stop();
      await sleep(downMs);
      await start();
    },
    async stop() {
      await stop().catch(() => undefined);
      rmSync(data, { recursive: true, force: true });
    },
  };
}

/** redis-server on a free port, without persistence (the gateways' rate-limit buckets). */
export async function startSoakRedis(): Promise<SoakServer> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    const proc = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
      stdio: "ignore",
    });
    child = proc;
    await waitUntil("redis", async () => {
      if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode}`);
      const { stdout } = await run("redis-cli", ["-p", String(port), "ping"]).catch(() => ({ stdout: "" }));
      return stdout.trim() === "PONG";
    });
  };
  const stop = async () => {
    const proc = child;
    if (!proc || proc.exitCode !== null) return;
    const gone = new Promise((resolve) => proc.once("exit", resolve));
    proc.kill("SIGTERM");
    await gone;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    async restart(downMs) {
      await stop();
      await sleep(downMs);
      await start();
    },
    stop,
  };
}
