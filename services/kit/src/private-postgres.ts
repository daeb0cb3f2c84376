import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A PostgreSQL server of a test's own, to restart or stop without touching anyone else's. */
export interface PrivatePostgres {
  /** `postgres://postgres@127.0.0.1:<port>` (append a database name). */
  readonly url: string;
  /** Stops the server (fast shutdown: sessions are cut, committed data stays) and starts it again. */
  restart(): void;
  /** Stops it and removes its files. */
  destroy(): void;
}

function binDir(): string {
  const versions = readdirSync("/usr/lib/postgresql").sort();
  const latest = versions.at(-1);
  if (!latest) throw new Error("no PostgreSQL server binaries under /usr/lib/postgresql");
  return join("/usr/lib/postgresql", latest, "bin");
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * initdb and start a throwaway cluster on a free loopback port (as the `postgres` user when run
 * as root, since PostgreSQL refuses to run as root), with trust auth.
 */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = binDir();
  const dir = mkdtempSync(join(tmpdir(), "portico-pg-"));
  chmodSync(dir, 0o777);
  const data = join(dir, "data");
  const port = await freePort();
  const asPostgres = (tool: string, args: string[]) => {
    const command =
      process.getuid?.() === 0 ? ["runuser", ["-u", "postgres", "--", join(bin, tool), ...args]] : [join(bin, tool), args];
    execFileSync(command[0] as string, command[1] as string[], { stdio: "pipe" });
  };
  asPostgres("initdb", ["-D", data, "-U", "postgres", "--auth=trust", "--no-sync"]);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=on`;
  const start = () => asPostgres("pg_ctl", ["-D", data, "-o", options, "-l", join(dir, "log"), "-w", "start"]);
  const stop = () => asPostgres("pg_ctl", ["-D", data, "-m", "fast", "-w", "stop"]);
  start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}`,
    restart() {
      stop();
      start();
    },
    destroy() {
      try {
        stop();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
