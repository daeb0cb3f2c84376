// A signing key deleted from the database (the response to a leaked key: plain SQL, no restart) is
// withdrawn within a revocation poll: its tokens are refused, remembered or not, every gateway
// watching revocations is told, and new tokens are signed with a key that was never exposed.
import { Code } from "@connectrpc/connect";
import { createLogger } from "@portico/kit";
import type { JWK } from "jose";
import { describe, expect, it } from "vitest";
import { startAuth } from "../src/start-auth.js";
import { codeOf, errorOf, grpcClient, STRONG_PASSWORD, signUp, useTestAuth, watchRevocations } from "./test-auth.js";

// Its own database: these tests delete the keys the service signs with.
const t = useTestAuth("key_withdrawal");

const kidOf = (token: string) =>
  (JSON.parse(Buffer.from(token.split(".")[0] as string, "base64url").toString()) as { kid: string }).kid;

const jwksKids = async () => (JSON.parse((await t.gateway.getJwks({})).jwksJson) as { keys: JWK[] }).keys.map((key) => key.kid);

describe("withdrawing a signing key by deleting its row", () => {
  it("refuses the current key's tokens at once, tells the watchers, and signs new tokens with a new key", async () => {
    const w = await watchRevocations(t);
    // Remembered at issue: its next check would be a lookup, not a signature check.
    const ada = await signUp(t);
    const withdrawn = kidOf(ada.tokens.accessToken);
    expect((await t.gateway.authenticate({ accessToken: ada.tokens.accessToken })).identity?.userId).toBe(ada.user.id);

    await t.db.query("delete from signing_keys where kid = $1", [withdrawn]);
    await expect.poll(() => w.keyIds(), { timeout: 5_000 }).toContain(withdrawn);

    // No reload of the keys needed (the 60 s timer): refused from the announcement on.
    const refused = await errorOf(t.gateway.authenticate({ accessToken: ada.tokens.accessToken }));
    expect(refused.code).toBe(Code.Unauthenticated);
    expect(refused.rawMessage).toBe("access token is signed with an unknown key");

    // Logging in again works at once, with a token of a new key, and the JWKS no longer offers the old one.
    const again = await t.client.login({ email: ada.email, password: STRONG_PASSWORD });
    expect(kidOf(again.tokens?.accessToken ?? "")).not.toBe(withdrawn);
    expect((await t.gateway.authenticate({ accessToken: again.tokens?.accessToken ?? "" })).identity?.userId).toBe(ada.user.id);
    // Sessions go on: refresh tokens are not signed, and Refresh answers a token of the new key.
    const refreshed = await t.client.refresh({ refreshToken: ada.tokens.refreshToken });
    expect(kidOf(refreshed.tokens?.accessToken ?? "")).toBe(kidOf(again.tokens?.accessToken ?? ""));
    expect((await t.gateway.authenticate({ accessToken: refreshed.tokens?.accessToken ?? "" })).identity?.sessionId).toBe(
      ada.sessionId,
    );
    const kids = await jwksKids();
    expect(kids).toContain(kidOf(again.tokens?.accessToken ?? ""));
    expect(kids).not.toContain(withdrawn);
    await w.stop();

    // A gateway that subscribes later hears of it in the snapshot.
    const late = await watchRevocations(t);
    expect(late.snapshot.keyIds).toContain(withdrawn);
    await late.stop();
  });

  it("a deleted retired key stops its tokens too, and the current key goes on signing", async () => {
    const before = await signUp(t);
    const retired = kidOf(before.tokens.accessToken);
    const current = (await t.auth.rotateSigningKey()).kid;
    const after = await signUp(t);
    expect(kidOf(after.tokens.accessToken)).toBe(current);
    // The retired key still verifies what it signed until someone withdraws it.
    expect((await t.gateway.authenticate({ accessToken: before.tokens.accessToken })).identity?.userId).toBe(before.user.id);

    const w = await watchRevocations(t);
    await t.db.query("delete from signing_keys where kid = $1", [retired]);
    await expect.poll(() => w.keyIds(), { timeout: 5_000 }).toContain(retired);
    expect((await errorOf(t.gateway.authenticate({ accessToken: before.tokens.accessToken }))).code).toBe(Code.Unauthenticated);
    expect((await t.gateway.authenticate({ accessToken: after.tokens.accessToken })).identity?.userId).toBe(after.user.id);
    const login = await t.client.login({ email: after.email, password: STRONG_PASSWORD });
    expect(kidOf(login.tokens?.accessToken ?? "")).toBe(current);
    expect(await jwksKids()).toEqual([current]);
    await w.stop();
  });

  it("every replica refuses the key's tokens, and the replicas make one new signing key between them", async () => {
    // A second replica on the same database, reached as the gateway reaches it.
    const second = await startAuth({
      port: 0,
      db: t.db,
      logger: createLogger({ service: "auth-test", level: "silent" }),
      identity: t.keys.identity("auth"),
      revocationPollMs: 50,
      shutdownGraceMs: 1_000,
    });
    try {
      const secondClient = grpcClient(second.url, t.gatewayHeaders);
      // Issued by the first replica; the second checks its signature.
      const ada = await signUp(t);
      const withdrawn = kidOf(ada.tokens.accessToken);
      expect((await secondClient.authenticate({ accessToken: ada.tokens.accessToken })).identity?.userId).toBe(ada.user.id);

      await t.db.query("delete from signing_keys where kid = $1", [withdrawn]);
      await expect
        .poll(() => codeOf(secondClient.authenticate({ accessToken: ada.tokens.accessToken })))
        .toBe(Code.Unauthenticated);
      await expect.poll(() => codeOf(t.gateway.authenticate({ accessToken: ada.tokens.accessToken }))).toBe(Code.Unauthenticated);

      // Both replicas sign with the one new key.
      const kids = await Promise.all(
        [t.client, secondClient].map(async (client) => {
          const login = await client.login({ email: ada.email, password: STRONG_PASSWORD });
          return kidOf(login.tokens?.accessToken ?? "");
        }),
      );
      expect(kids[0]).not.toBe(withdrawn);
      expect(kids[1]).toBe(kids[0]);
      const { rows } = await t.db.query<{ kid: string }>("select kid from signing_keys where retired_at is null");
      expect(rows.map((row) => row.kid)).toEqual([kids[0]]);
    } finally {
      await second.close();
    }
  });
});
