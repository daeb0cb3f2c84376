import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database } from "../src/database.js";
import { migrate } from "../src/migrate.js";
import { openTestDatabase } from "../testing/test-database.js";

let db: Database;
const dir = mkdtempSync(join(tmpdir(), "portico-migrations-"));

beforeAll(async () => {
  db = await openTestDatabase("kit");
  writeFileSync(join(dir, "001_items.sql"), "create table items (id int primary key, name text not null);\n");
  writeFileSync(join(dir, "002_seed.sql"), "insert into items values (1, 'one');\ninsert into items values (2, 'two');\n");
});
afterAll(() => db?.close());

describe(`database (${process.env.DATABASE_URL ? "DATABASE_URL" : "embedded PostgreSQL"})`, () => {
  it("applies migrations once, in order", async () => {
    expect(await migrate(db, dir)).toEqual(["001_items", "002_seed"]);
    expect(await migrate(db, dir)).toEqual([]);
    const { rows } = await db.query<{ name: string }>("select name from items order by id");
    expect(rows.map((r) => r.name)).toEqual(["one", "two"]);
  });

  it("passes parameters, never splicing them into SQL", async () => {
    const evil = "x'); drop table items; --";
    await db.query("insert into items values ($1, $2)", [3, evil]);
    const { rows } = await db.query<{ name: string }>("select name from items where id = $1", [3]);
    expect(rows[0]?.name).toBe(evil);
  });

  it("rolls a failed transaction back whole", async () => {
    await expect(
      db.transaction(async (tx) => {
        await tx.query("insert into items values (10, 'ten')");
        await tx.query("insert into items values (10, 'duplicate')");
      }),
    ).rejects.toThrow();
    const { rowCount } = await db.query("select 1 from items where id = 10");
    expect(rowCount).toBe(0);
  });

  it("commits a successful transaction", async () => {
    const result = await db.transaction(async (tx) => {
      await tx.query("insert into items values (20, 'twenty')");
      return "done";
    });
    expect(result).toBe("done");
    expect((await db.query("select 1 from items where id = 20")).rowCount).toBe(1);
  });
});
