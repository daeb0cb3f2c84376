// vitest global setup: one embedded PostgreSQL server for the whole test run (each test file then
// makes databases of its own on it), unless DATABASE_URL names a server to use instead.
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEmbeddedPostgres } from "../src/embedded-postgres.js";
import { TEST_SERVER_ENV } from "./test-server-url.js";

export default async function setup(): Promise<(() => Promise<void>) | undefined> {
  // DATABASE_URL, or a server another project of this run already started.
  if (process.env.DATABASE_URL || process.env[TEST_SERVER_ENV]) return undefined;
  const dir = mkdtempSync(join(tmpdir(), "portico-test-pg-"));
  chmodSync(dir, 0o755); // the server runs as the postgres user when the tests run as root
  // Throwaway data: no fsync; more connections than a laptop's server, for test files in parallel.
  const server = await startEmbeddedPostgres({
    dataDir: join(dir, "data"),
    port: 0,
    trustLoopback: true,
    settings: { fsync: "off", synchronous_commit: "off", full_page_writes: "off", max_connections: "300" },
  });
  // Test workers start after the global setup and inherit the environment.
  process.env[TEST_SERVER_ENV] = server.url;
  return async () => {
    delete process.env[TEST_SERVER_ENV];
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  };
}
