import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Database } from "./database.js";

/**
 * Applies the `NNN_name.sql` files of `dir` that have not run yet, in order, in one
 * transaction; concurrent starters wait on an advisory lock. Returns the
 * versions applied.
 */
export async function migrate(db: Database, dir: string): Promise<string[]> {
  const files = readdirSync(dir)
    .filter((f) => /^\d+_[\w-]+\.sql$/.test(f))
    .sort();
  return db.transaction(async (tx) => {
    await tx.query("select pg_advisory_xact_lock(hashtext('portico.migrate'))");
    await tx.query(
      "create table if not exists schema_migrations (version text primary key, applied_at timestamptz not null default now())",
    );
    const done = new Set(
      (await tx.query<{ version: string }>("select version from schema_migrations")).rows.map((r) => r.version),
    );
    const applied: string[] = [];
    for (const file of files) {
      const version = file.replace(/\.sql$/, "");
      if (done.has(version)) continue;
      const sql = readFileSync(join(dir, file), "utf8");
      // Statements are separated by lines holding only ";" or by ";" at a line's end.
      for (const statement of sql
        .split(/;\s*$/m)
        .map((s) => s.trim())
        .filter(Boolean)) {
        await tx.query(statement);
      }
      await tx.query("insert into schema_migrations (version) values ($1)", [version]);
      applied.push(version);
    }
    return applied;
  });
}
