// A restart of the PostgreSQL server itself: every acknowledged write is still there afterwards,
// and the auth service serves again without being restarted. The server is a private one, so the
// machine's shared PostgreSQL is never disturbed.
import { randomBytes } from "node:crypto";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AuthService } from "@portico/gen/portico/auth/v1/auth_pb.js";
import { createLogger, type Database, openDatabase } from "@portico/kit";
import { createTestKeys, type PrivatePostgres, startPrivatePostgres } from "@portico/kit/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AuthServer, startAuth } from "../src/start-auth.js";
import { STRONG_PASSWORD } from "./test-auth.js";

let pg: PrivatePostgres;
let db: Database;
let auth: AuthServer;

beforeAll(async () => {
  pg = await startPrivatePostgres();
  db = await openDatabase({ url: `${pg.url}/portico_auth`, onError: () => undefined });
  auth = await startAuth({
    port: 0,
    db,
    logger: createLogger({ service: "auth-test", level: "silent" }),
    identity: createTestKeys().identity("auth"),
    loginLimits: { signUps: 10_000 },
    shutdownGraceMs: 1_000,
  });
}, 60_000);

afterAll(async () => {
  await auth?.close();
  await db?.close();
  await pg?.destroy();
});

/** Retries while the service reports the database as gone; any other answer is final. */
async function eventually<T>(call: () => Promise<T>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await call();
    } catch (error) {
      const code = ConnectError.from(error).code;
      if (Date.now() > deadline || (code !== Code.Unavailable && code !== Code.Internal)) throw error;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

describe("auth across a PostgreSQL restart", () => {
  it("keeps every acknowledged sign-up, session and refresh, and serves again without a restart of its own", async () => {
    const client = createClient(AuthService, createConnectTransport({ baseUrl: auth.url, httpVersion: "2" }));
    const accounts = [];
    for (let i = 0; i < 3; i++) {
      const email = `restart-${i}-${randomBytes(3).toString("hex")}@example.com`;
      const res = await client.signUp({ email, password: STRONG_PASSWORD, displayName: `R${i}` });
      accounts.push({ email, id: res.user?.id, refreshToken: res.tokens?.refreshToken ?? "" });
    }

    const startedAt = async () => (await db.query<{ t: string }>("select pg_postmaster_start_time()::text as t")).rows[0]?.t;
    const before = await startedAt();
    await pg.restart();

    for (const account of accounts) {
      const login = await eventually(() => client.login({ email: account.email, password: STRONG_PASSWORD }));
      expect(login.user?.id).toBe(account.id);
      const refreshed = await eventually(() => client.refresh({ refreshToken: account.refreshToken }));
      expect(refreshed.user?.id).toBe(account.id);
    }
    expect(await eventually(startedAt)).not.toBe(before);
    // A duplicate sign-up still finds the account that was acknowledged before the restart.
    const duplicate = await client
      .signUp({ email: accounts[0]?.email ?? "", password: STRONG_PASSWORD, displayName: "again" })
      .catch((e: unknown) => ConnectError.from(e));
    expect((duplicate as ConnectError).code).toBe(Code.AlreadyExists);
  }, 60_000);
});
