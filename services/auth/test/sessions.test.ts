import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { grantAdmin } from "../src/grant-admin.js";
import {
  codeOf,
  errorOf,
  identityOf,
  STRONG_PASSWORD,
  signUp,
  storedState,
  uniqueEmail,
  useTestAuth,
  watchRevocations,
} from "./test-auth.js";

const t = useTestAuth("sessions");

async function login(email: string) {
  const res = await t.client.login({ email, password: STRONG_PASSWORD });
  const { identity } = await t.gateway.authenticate({ accessToken: res.tokens!.accessToken });
  return { tokens: res.tokens!, sessionId: identity!.sessionId, user: res.user! };
}

describe("refresh-token reuse", () => {
  it("revokes the whole session and announces it on WatchRevocations", async () => {
    const w = await watchRevocations(t);
    const { tokens, sessionId } = await signUp(t);
    const next = await t.client.refresh({ refreshToken: tokens.refreshToken });
    // An attacker replays the spent token: the session ends for everyone.
    const error = await errorOf(t.client.refresh({ refreshToken: tokens.refreshToken }));
    expect(error.code).toBe(Code.Unauthenticated);
    expect(error.rawMessage).toContain("already used");
    expect(await codeOf(t.client.refresh({ refreshToken: next.tokens!.refreshToken }))).toBe(Code.Unauthenticated);
    expect(await codeOf(t.gateway.authenticate({ accessToken: next.tokens!.accessToken }))).toBe(Code.Unauthenticated);
    await expect.poll(() => w.sessionIds()).toContain(sessionId);
    await w.stop();
  });

  it("two concurrent refreshes with one token: at most one succeeds", async () => {
    const { tokens } = await signUp(t);
    const results = await Promise.all([1, 2].map(() => codeOf(t.client.refresh({ refreshToken: tokens.refreshToken }))));
    expect(results.filter((r) => r === "ok").length).toBeLessThanOrEqual(1);
  });
});

describe("LogoutAll and ChangePassword", () => {
  it("LogoutAll ends every session of the caller and announces the user", async () => {
    const w = await watchRevocations(t);
    const a = await signUp(t);
    const b = await login(a.email);
    const other = await signUp(t);
    const { sessionsRevoked } = await t.as(identityOf(a.user, a.sessionId)).logoutAll({});
    expect(sessionsRevoked).toBe(2);
    for (const token of [a.tokens.accessToken, b.tokens.accessToken]) {
      expect(await codeOf(t.gateway.authenticate({ accessToken: token }))).toBe(Code.Unauthenticated);
    }
    expect(await codeOf(t.client.refresh({ refreshToken: b.tokens.refreshToken }))).toBe(Code.Unauthenticated);
    expect(await codeOf(t.gateway.authenticate({ accessToken: other.tokens.accessToken }))).toBe("ok");
    await expect.poll(() => w.userIds()).toContain(a.user.id);
    expect(w.sessionIds()).toEqual(expect.arrayContaining([a.sessionId, b.sessionId]));
    const userMessage = w.messages.find((m) => m.userIds.includes(a.user.id));
    expect(Number(userMessage?.revokedBefore?.seconds)).toBeGreaterThan(Date.now() / 1000 - 60);
    // The user can log in again afterwards.
    expect(await codeOf(t.gateway.authenticate({ accessToken: (await login(a.email)).tokens.accessToken }))).toBe("ok");
    await w.stop();
  });

  it("ChangePassword keeps this session, ends the others, and the new password works", async () => {
    const a = await signUp(t);
    const b = await login(a.email);
    const newPassword = "a much better passphrase 2";
    const { sessionsRevoked } = await t.as(identityOf(a.user, a.sessionId)).changePassword({
      currentPassword: STRONG_PASSWORD,
      newPassword,
    });
    expect(sessionsRevoked).toBe(1);
    expect(await codeOf(t.gateway.authenticate({ accessToken: a.tokens.accessToken }))).toBe("ok");
    expect(await codeOf(t.client.refresh({ refreshToken: a.tokens.refreshToken }))).toBe("ok");
    expect(await codeOf(t.gateway.authenticate({ accessToken: b.tokens.accessToken }))).toBe(Code.Unauthenticated);
    expect(await codeOf(t.client.login({ email: a.email, password: STRONG_PASSWORD }))).toBe(Code.Unauthenticated);
    expect(await codeOf(t.client.login({ email: a.email, password: newPassword }))).toBe("ok");
  });

  it("ChangePassword with a wrong current password or a weak new one changes nothing", async () => {
    const a = await signUp(t);
    const me = t.as(identityOf(a.user, a.sessionId));
    const before = await storedState(t.db);
    const wrong = await errorOf(
      me.changePassword({ currentPassword: "not my password at all", newPassword: "another fine passphrase" }),
    );
    expect(wrong.code).toBe(Code.InvalidArgument);
    const weak = await errorOf(me.changePassword({ currentPassword: STRONG_PASSWORD, newPassword: "short" }));
    expect(weak.code).toBe(Code.InvalidArgument);
    expect(weak.rawMessage).toContain("new_password");
    expect(await codeOf(t.client.changePassword({ currentPassword: STRONG_PASSWORD, newPassword: "x".repeat(20) }))).toBe(
      Code.Unauthenticated,
    );
    expect(await storedState(t.db)).toEqual(before);
  });
});

describe("roles", () => {
  it("SetUserRoles needs auth.admin; grantAdmin makes the first admin; the demoted user's old token is refused", async () => {
    const admin = await signUp(t);
    const target = await signUp(t);
    const setRoles = (caller: typeof admin, roles: string[], userId = target.user.id) =>
      t.as(identityOf(caller.user, caller.sessionId)).setUserRoles({ userId, roles });
    expect(await codeOf(setRoles(admin, ["greeter.admin"]))).toBe(Code.PermissionDenied);

    await grantAdmin(t.db, admin.email.toUpperCase());
    // The grant voids the admin's old token; a refresh carries the new role.
    await expect.poll(() => codeOf(t.gateway.authenticate({ accessToken: admin.tokens.accessToken }))).toBe(Code.Unauthenticated);
    const refreshed = await t.client.refresh({ refreshToken: admin.tokens.refreshToken });
    expect(refreshed.user?.roles).toEqual(["auth.admin"]);
    const { identity } = await t.gateway.authenticate({ accessToken: refreshed.tokens!.accessToken });
    expect(identity?.roles).toEqual(["auth.admin"]);
    const adminNow = { ...admin, user: refreshed.user! };

    const promoted = await setRoles(adminNow, ["greeter.admin", "greeter.admin", "beta"]);
    expect(promoted.user?.roles).toEqual(["beta", "greeter.admin"]);
    const targetRefreshed = await t.client.refresh({ refreshToken: target.tokens.refreshToken });
    const oldToken = targetRefreshed.tokens!.accessToken;
    expect((await t.gateway.authenticate({ accessToken: oldToken })).identity?.roles).toEqual(["beta", "greeter.admin"]);

    // Demotion: the token with the old roles is refused once the revocation is seen.
    await setRoles(adminNow, []);
    expect(await codeOf(t.gateway.authenticate({ accessToken: oldToken }))).toBe(Code.Unauthenticated);
    const demoted = await t.client.refresh({ refreshToken: targetRefreshed.tokens!.refreshToken });
    expect((await t.gateway.authenticate({ accessToken: demoted.tokens!.accessToken })).identity?.roles).toEqual([]);

    const before = await storedState(t.db);
    expect(await codeOf(setRoles(adminNow, ["x"], "00000000-0000-4000-8000-000000000000"))).toBe(Code.NotFound);
    expect(await codeOf(setRoles(adminNow, ["x"], "1' or '1'='1"))).toBe(Code.InvalidArgument);
    expect(await codeOf(setRoles(adminNow, ["x'); drop table users; --"]))).toBe(Code.InvalidArgument);
    expect(
      await codeOf(
        setRoles(
          adminNow,
          Array.from({ length: 40 }, (_, i) => `r${i}`),
        ),
      ),
    ).toBe(Code.InvalidArgument);
    expect(await storedState(t.db)).toEqual(before);
    await expect(grantAdmin(t.db, uniqueEmail())).rejects.toThrow(/no account/);
  });

  it("a deleted user's old access token is refused once the revocation is seen", async () => {
    const w = await watchRevocations(t);
    const gone = await signUp(t);
    await t.db.query("delete from users where id = $1", [gone.user.id]);
    await expect.poll(() => codeOf(t.gateway.authenticate({ accessToken: gone.tokens.accessToken }))).toBe(Code.Unauthenticated);
    await expect.poll(() => w.userIds()).toContain(gone.user.id);
    expect(await codeOf(t.client.refresh({ refreshToken: gone.tokens.refreshToken }))).toBe(Code.Unauthenticated);
    expect(await codeOf(t.as(identityOf(gone.user, gone.sessionId)).getMe({}))).toBe(Code.Unauthenticated);
    await w.stop();
  });
});

describe("durability", () => {
  it("a restart keeps users, sessions, refresh tokens, keys and revocations", async () => {
    const live = await signUp(t);
    const ended = await login(live.email);
    await t.client.logout({ refreshToken: ended.tokens.refreshToken });
    await t.restart();
    expect(await codeOf(t.gateway.authenticate({ accessToken: live.tokens.accessToken }))).toBe("ok");
    expect(await codeOf(t.gateway.authenticate({ accessToken: ended.tokens.accessToken }))).toBe(Code.Unauthenticated);
    expect(await codeOf(t.client.refresh({ refreshToken: ended.tokens.refreshToken }))).toBe(Code.Unauthenticated);
    expect(await codeOf(t.client.refresh({ refreshToken: live.tokens.refreshToken }))).toBe("ok");
    expect(await codeOf(t.client.login({ email: live.email, password: STRONG_PASSWORD }))).toBe("ok");
    expect(await codeOf(t.client.signUp({ email: live.email, password: STRONG_PASSWORD, displayName: "" }))).toBe(
      Code.AlreadyExists,
    );
  });

  it("a WatchRevocations subscriber is told the service is shutting down (unavailable) on restart", async () => {
    const iterator = t.gateway.watchRevocations({})[Symbol.asyncIterator]();
    expect((await iterator.next()).value?.snapshot).toBe(true);
    const ended = (async () => {
      try {
        while (!(await iterator.next()).done) {
          // user revocations still in force follow the snapshot
        }
        return "ended without an error";
      } catch (error) {
        return ConnectError.from(error).code;
      }
    })();
    await t.restart();
    expect(await ended).toBe(Code.Unavailable);
  });
});
