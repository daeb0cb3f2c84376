import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEmbeddedPostgres } from "../src/embedded-postgres.js";

/** A PostgreSQL server of a test's own, to restart or stop without touching anyone else's. */
export interface PrivatePostgres {
  /** `postgres://postgres:<password>@127.0.0.1:<port>` (append `/<database>`). */
  readonly url: string;
  /** Stops the server (fast shutdown: sessions are cut, committed data stays) and starts it again. */
  restart(): Promise<void>;
  /** Stops it and removes its files. */
  destroy(): Promise<void>;
}

/** An embedded PostgreSQL server (the one `npm start` runs) in a temporary directory, on a free port. */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const dir = mkdtempSync(join(tmpdir(), "portico-pg-"));
  chmodSync(dir, 0o755); // the server runs as the postgres user when the tests run as root
  const server = await startEmbeddedPostgres({ dataDir: join(dir, "data"), port: 0, trustLoopback: true });
  return {
    url: server.url.slice(0, -"/postgres".length),
    restart: () => server.restart(),
    async destroy() {
      try {
        await server.stop();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
