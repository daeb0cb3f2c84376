import { randomBytes } from "node:crypto";
import pg from "pg";
import { type Database, openDatabase } from "../src/database.js";
import { testServerUrl } from "./test-server-url.js";

/**
 * A fresh, empty database for one test file on the tests' PostgreSQL server (`DATABASE_URL`, or the
 * embedded server of the test run), dropped again on close.
 */
export async function openTestDatabase(label: string): Promise<Database> {
  const url = new URL(testServerUrl());
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
