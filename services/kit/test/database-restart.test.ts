// A PostgreSQL restart while a transaction holds a connection between two queries (a handler
// awaiting something else inside db.transaction): the transaction fails, the process lives on and
// the database serves again. The soak (npm run soak) found the auth service killed by exactly this:
// "Unhandled 'error' event … terminating connection due to administrator command".
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../src/database.js";
import { type PrivatePostgres, startPrivatePostgres } from "../testing/private-postgres.js";

let pg: PrivatePostgres;
let db: Database;
const heard: Error[] = [];

beforeAll(async () => {
  pg = await startPrivatePostgres();
  db = await openDatabase({ url: `${pg.url}/portico_restart`, onError: (error) => heard.push(error) });
  await db.query("create table items (id int primary key)");
}, 60_000);

afterAll(async () => {
  await db?.close();
  await pg?.destroy();
});

describe("database on a PostgreSQL server that restarts", () => {
  it("fails a transaction whose connection the restart cut, without ending the process, and serves again", async () => {
    const transaction = db.transaction(async (tx) => {
      await tx.query("insert into items values (1)");
      // Between two queries the connection sits idle in the transaction while the server stops
      // (a fast shutdown: sessions are cut, the uncommitted insert is lost) and starts again.
      await pg.restart();
      await tx.query("insert into items values (2)");
    });
    // The caller hears `unavailable` (worth a retry), not `internal`.
    await expect(transaction).rejects.toMatchObject({
      code: Code.Unavailable,
      message: expect.stringMatching(/database unavailable/),
    });
    expect(heard.map((e) => e.message).join(" ")).toMatch(/terminating connection/);
    // Nothing of the cut transaction was committed; the pool hands out working connections again.
    await db.transaction(async (tx) => tx.query("insert into items values (3)"));
    const { rows } = await db.query<{ id: number }>("select id from items order by id");
    expect(rows.map((r) => r.id)).toEqual([3]);
  });
});
