import { Code, ConnectError } from "@connectrpc/connect";
import type pg from "pg";
import { type DatabaseListener, type ListenOptions, startDatabaseListener } from "./database-listener.js";

// The driver loads when a database is opened, not with kit: a process without a database (the
// gateway, the supervisor) does not carry it in memory.
const loadPg = async () => (await import("pg")).default;

export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

/** Anything that runs parameterised SQL: the database itself or an open transaction. */
export interface Queryable {
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>>;
}

/** One small interface over a PostgreSQL server (`pg`): the embedded one of `npm start` or yours. */
export interface Database extends Queryable {
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Hears NOTIFY on `channel` (a lower-case identifier) over a connection of its own, reopened when
   * it fails (`database-listener.ts`); `close` of the database stops it too.
   */
  listen(channel: string, options: ListenOptions): Promise<DatabaseListener>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** A postgres:// URL: use that server (the database is created when missing). */
  url: string;
  /** Called when an idle pooled connection fails (e.g. the server restarted). */
  onError?: (error: Error) => void;
}

/** Opens a pool on the URL's database, creating the database when it does not exist yet. */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  if (!options.url) throw new Error("openDatabase: url is empty: expected a postgres:// URL");
  return openPostgres(options.url, options.onError);
}

/** Creates the URL's database on its server when it does not exist yet. */
export async function ensurePostgresDatabase(url: string): Promise<void> {
  const name = decodeURIComponent(new URL(url).pathname.slice(1));
  if (!name) throw new Error(`database URL ${redact(url)} names no database`);
  const admin = new URL(url);
  admin.pathname = "/postgres";
  const client = new (await loadPg()).Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const found = await client.query("select 1 from pg_database where datname = $1", [name]);
    if (found.rowCount === 0) {
      await client.query(`create database "${name.replaceAll('"', '""')}"`).catch((error: { code?: string }) => {
        // Another process created it first.
        if (error.code !== "42P04" && error.code !== "23505") throw error;
      });
    }
  } finally {
    await client.end();
  }
}

/** SQLSTATE classes and codes that mean the server, not the statement, failed: retry elsewhere or later. */
const serverGone = /^(08|57P0[1-3]|53300)/;
const socketGone = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH"]);

/**
 * A lost or unreachable server is `unavailable` to the caller (a client may retry it), not the
 * `internal` an unknown error becomes; every other error (a constraint, bad SQL) passes unchanged.
 */
function unavailable(error: unknown): never {
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  const gone =
    (typeof code === "string" && (serverGone.test(code) || socketGone.has(code))) ||
    /^Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/.test(message);
  if (!gone) throw error;
  throw new ConnectError(`database unavailable: ${message}`, Code.Unavailable, undefined, undefined, error);
}

async function openPostgres(url: string, onError?: (error: Error) => void): Promise<Database> {
  await ensurePostgresDatabase(url);
  const pool = new (await loadPg()).Pool({ connectionString: url, max: 10, connectionTimeoutMillis: 5_000 });
  // An idle client whose server went away must not crash the process; the pool replaces it.
  pool.on("error", (error) => onError?.(error));
  const query = async <R>(runner: pg.Pool | pg.PoolClient, sql: string, params?: readonly unknown[]) => {
    const result = await runner.query(sql, params as unknown[] | undefined).catch(unavailable);
    return { rows: result.rows as R[], rowCount: result.rowCount ?? result.rows.length };
  };
  await pool.query("select 1");
  const listeners = new Set<DatabaseListener>();
  const Client = (await loadPg()).Client;
  return {
    query: (sql, params) => query(pool, sql, params),
    async transaction(fn) {
      const client = await pool.connect().catch(unavailable);
      // The pool listens for errors of idle clients only: a checked-out client whose server goes
      // away between two queries (a restart) emits 'error', which without a listener ends the
      // process. Heard here, its next query fails instead and release() drops it from the pool.
      const lost = (error: Error) => onError?.(error);
      client.on("error", lost);
      try {
        await client.query("begin");
        const result = await fn({ query: (sql, params) => query(client, sql, params) });
        await client.query("commit");
        return result;
      } catch (error) {
        await client.query("rollback").catch(() => undefined);
        throw error;
      } finally {
        client.off("error", lost);
        client.release();
      }
    },
    async listen(channel, options) {
      const newClient = () =>
        new Client({
          connectionString: url,
          connectionTimeoutMillis: 5_000,
          keepAlive: true,
          keepAliveInitialDelayMillis: 10_000,
          application_name: `portico listen ${channel}`,
        });
      const listener = await startDatabaseListener(newClient, channel, options);
      listeners.add(listener);
      return {
        get listening() {
          return listener.listening;
        },
        close: () => {
          listeners.delete(listener);
          return listener.close();
        },
      };
    },
    async close() {
      await Promise.all([...listeners].map((listener) => listener.close()));
      listeners.clear();
      await pool.end();
    },
  };
}

/** The URL with its password hidden, for logs and errors. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "<unparseable url>";
  }
}
