import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database } from "../src/database.js";
import { openTestDatabase } from "../testing/test-database.js";
import { until } from "../testing/until.js";

let db: Database;

beforeAll(async () => {
  db = await openTestDatabase("listen");
});
afterAll(() => db?.close());

describe(`database listen (${process.env.DATABASE_URL ? "DATABASE_URL" : "embedded PostgreSQL"})`, () => {
  it("hears a NOTIFY sent by another session, with its payload", async () => {
    const heard: string[] = [];
    const listener = await db.listen("portico_test_news", { onNotify: (payload) => heard.push(payload) });
    try {
      expect(listener.listening).toBe(true);
      await db.query("select pg_notify('portico_test_news', 'hello')");
      await db.query("select pg_notify('portico_test_other', 'not for us')");
      await until(() => heard.length > 0);
      expect(heard).toEqual(["hello"]);
    } finally {
      await listener.close();
    }
  });

  it("listens again after its connection is cut, and says so, so the caller can re-read what it missed", async () => {
    const heard: string[] = [];
    const events: string[] = [];
    const listener = await db.listen("portico_test_cut", {
      onNotify: (payload) => heard.push(payload),
      onListening: () => events.push("listening"),
      onLost: () => events.push("lost"),
      retryMs: 50,
    });
    try {
      const { rows } = await db.query<{ cut: boolean }>(
        "select pg_terminate_backend(pid) as cut from pg_stat_activity where application_name = 'portico listen portico_test_cut' and datname = current_database()",
      );
      expect(rows.map((r) => r.cut)).toEqual([true]);
      await until(() => events.length >= 3);
      expect(events).toEqual(["listening", "lost", "listening"]);
      expect(listener.listening).toBe(true);
      await db.query("select pg_notify('portico_test_cut', 'after')");
      await until(() => heard.length > 0);
      expect(heard).toEqual(["after"]);
    } finally {
      await listener.close();
    }
    expect(listener.listening).toBe(false);
  });

  it("refuses a channel that is not a plain identifier, before any SQL", async () => {
    await expect(db.listen("news; drop table x", { onNotify: () => {} })).rejects.toThrow(
      /channel "news; drop table x" is not a lower-case SQL identifier/,
    );
  });
});
