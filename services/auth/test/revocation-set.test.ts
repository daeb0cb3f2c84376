// The revocation set hears the log's trigger (LISTEN/NOTIFY): a revocation written by anyone else
// (another replica, a script, plain SQL) is in force at once, not on the next poll; while the
// notification connection is down the poll takes over.
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { createLogger, type Database, migrate } from "@portico/kit";
import { openTestDatabase, until } from "@portico/kit/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRevocationSet, type Revocation } from "../src/revocation-set.js";

let db: Database;
const logger = createLogger({ service: "revocation-set-test", level: "silent" });

beforeAll(async () => {
  db = await openTestDatabase("revocation_set");
  await migrate(db, fileURLToPath(new URL("../migrations", import.meta.url)));
});
afterAll(() => db?.close());

/** Cuts the revocation set's LISTEN connection, as a network or a server restart would. */
const cutListener = () =>
  db.query(
    "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'portico listen portico_revocations' and datname = current_database()",
  );

/** A revocation set on `on` whose poll, while it listens, is a minute apart: only a notification is sooner. */
const openSet = (pollIntervalMs: number, on: Database = db) =>
  createRevocationSet({ db: on, logger, retainMs: 60_000, pollIntervalMs, listeningPollIntervalMs: 60_000 });

const endSession = (sessionId: string) =>
  db.query("insert into revocations (session_id, reason) values ($1, 'ended by plain SQL')", [sessionId]);

describe("revocation set", () => {
  it("applies and announces a revocation made by plain SQL at once, whatever its poll interval", async () => {
    // Polls a minute apart, both while listening and not: only the notification can bring it sooner.
    const set = await openSet(60_000);
    const announced: Revocation[] = [];
    set.subscribe((revocation) => announced.push(revocation));
    try {
      const sessionId = randomUUID();
      expect(set.isRevoked(sessionId, randomUUID(), Date.now())).toBe(false);
      await endSession(sessionId);
      const start = Date.now();
      await until(() => set.isRevoked(sessionId, randomUUID(), Date.now()), 2_000);
      expect(Date.now() - start).toBeLessThan(2_000);
      expect(announced).toEqual([{ sessionIds: [sessionId] }]);
    } finally {
      set.close();
    }
  });

  it("reads the log again when its notification connection comes back, so nothing written meanwhile is missed", async () => {
    const set = await openSet(60_000);
    try {
      // The connection is cut; the row is written while no one listens; the reconnection (a second
      // later) reads the log: the only way the set can learn of it inside the minute's poll.
      await cutListener();
      const sessionId = randomUUID();
      await endSession(sessionId);
      await until(() => set.isRevoked(sessionId, randomUUID(), Date.now()), 5_000);
    } finally {
      set.close();
    }
  });

  it("does not read the log every poll interval while it hears notifications (an idle replica stays idle)", async () => {
    let reads = 0;
    const counted: Database = {
      ...db,
      query: (sql, params) => {
        if (/from revocations/.test(sql)) reads++;
        return db.query(sql, params);
      },
    };
    const set = await openSet(50, counted);
    try {
      await new Promise((resolve) => setTimeout(resolve, 600));
      // The first read and the one on listening; a 50 ms poll would have made a dozen.
      expect(reads).toBeLessThanOrEqual(2);
      // Cut off, it polls at the short interval until it listens again (and then reads once more).
      await cutListener();
      const before = reads;
      await until(() => reads > before, 2_000);
    } finally {
      set.close();
    }
  });

  it("leaves no listening connection behind when it cannot start (no revocation log to read)", async () => {
    const empty = await openTestDatabase("revocation_set_empty");
    try {
      await expect(openSet(50, empty)).rejects.toThrow(/revocations/);
      const listening = () =>
        empty.query(
          "select 1 from pg_stat_activity where application_name = 'portico listen portico_revocations' and datname = current_database()",
        );
      // Given the listener's retry (a second) a chance to come back: nothing does.
      await new Promise((resolve) => setTimeout(resolve, 1_200));
      expect((await listening()).rowCount).toBe(0);
    } finally {
      await empty.close();
    }
  });
});
