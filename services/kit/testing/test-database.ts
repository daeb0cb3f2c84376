import { randomBytes } from "node:crypto";
import pg from "pg";
import { type Database, openDatabase } from "../src/database.js";

/**
 * A fresh, empty database for one test file: a new database on the PostgreSQL server of
 * `DATABASE_URL` when it is set (dropped again on close), in-memory PGlite otherwise.
 */
export async function openTestDatabase(label: string): Promise<Database> {
  const base = process.env.DATABASE_URL;
  if (!base) return openDatabase({});
  const url = new URL(base);
  const name = `portico_test_${label.replace(/\W/g, "_")}_${randomBytes(4).toString("hex")}`.toLowerCase();
  url.pathname = `/${name}`;
  const db = await openDatabase({ url: url.toString() });
  return {
    ...db,
    async close() {
      await db.close();
      url.pathname = "/postgres";
      const admin = new pg.Client({ connectionString: url.toString() });
      await admin.connect();
      await admin.query(`drop database if exists "${name}" with (force)`).finally(() => admin.end());
    },
  };
}
