import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { REFRESH_COOKIE } from "../src/refresh-cookie.js";
import { codeOf, grpcClient, identityOf, STRONG_PASSWORD, signUp as signUpAs, uniqueEmail, useTestAuth } from "./test-auth.js";

const t = useTestAuth("auth_service");

async function signUp(email = uniqueEmail()) {
  return signUpAs(t, email);
}

describe("sign-up, login and Authenticate", () => {
  it("signs up, answers the user and tokens, and Authenticate returns the identity", async () => {
    const { user, tokens } = await signUp();
    expect(user).toMatchObject({ displayName: "Ada", tier: "free", roles: [] });
    expect(user?.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(tokens.accessToken.split(".")).toHaveLength(3);
    expect(tokens.refreshToken.length).toBeGreaterThan(30);
    const { identity } = await t.gateway.authenticate({ accessToken: tokens.accessToken });
    expect(identity).toMatchObject({ userId: user?.id, tier: "free", roles: [] });
    expect(identity?.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    const expiresIn = Number(identity?.expiresAt?.seconds) - Date.now() / 1000;
    expect(expiresIn).toBeGreaterThan(14 * 60);
    expect(expiresIn).toBeLessThanOrEqual(15 * 60);
  });

  it("logs in with the same email in another case and answers a new session", async () => {
    const { email, user, tokens } = await signUp(uniqueEmail("Mixed.Case"));
    const login = await t.client.login({ email: email.toUpperCase(), password: STRONG_PASSWORD });
    expect(login.user?.id).toBe(user?.id);
    const a = await t.gateway.authenticate({ accessToken: tokens.accessToken });
    const b = await t.gateway.authenticate({ accessToken: login.tokens!.accessToken });
    expect(b.identity?.sessionId).not.toBe(a.identity?.sessionId);
  });

  it("answers unauthenticated, with one message, for a wrong password and an unknown email", async () => {
    const { email } = await signUp();
    const wrong = await t.client.login({ email, password: `${STRONG_PASSWORD}!` }).catch((e) => ConnectError.from(e));
    const unknown = await t.client.login({ email: uniqueEmail(), password: STRONG_PASSWORD }).catch((e) => ConnectError.from(e));
    expect(wrong).toBeInstanceOf(ConnectError);
    expect(unknown).toBeInstanceOf(ConnectError);
    expect((wrong as ConnectError).code).toBe(Code.Unauthenticated);
    expect((unknown as ConnectError).code).toBe(Code.Unauthenticated);
    expect((wrong as ConnectError).rawMessage).toBe((unknown as ConnectError).rawMessage);
  });

  it("works over gRPC too", async () => {
    const grpc = grpcClient(t.auth.url, t.gatewayHeaders);
    const email = uniqueEmail();
    const { tokens } = await grpc.signUp({ email, password: STRONG_PASSWORD, displayName: "" });
    const { identity } = await grpc.authenticate({ accessToken: tokens!.accessToken });
    expect(identity?.userId).toBeTruthy();
  });

  it("refuses a garbage access token with unauthenticated", async () => {
    expect(await codeOf(t.gateway.authenticate({ accessToken: "not-a-token" }))).toBe(Code.Unauthenticated);
    expect(await codeOf(t.gateway.authenticate({ accessToken: "" }))).toBe(Code.Unauthenticated);
  });
});

describe("GetMe", () => {
  it("answers the caller named by the gateway's identity assertion", async () => {
    const { user, sessionId } = await signUp();
    const me = await t.as(identityOf(user, sessionId)).getMe({});
    expect(me.user).toMatchObject({ id: user?.id, displayName: "Ada" });
  });

  it("answers unauthenticated without an assertion, even with a forged x-user-id", async () => {
    const { user } = await signUp();
    expect(await codeOf(t.client.getMe({}))).toBe(Code.Unauthenticated);
    expect(await codeOf(t.withHeaders({ "x-user-id": user!.id }).getMe({}))).toBe(Code.Unauthenticated);
    expect(await codeOf(t.withHeaders({ "x-portico-identity": "forged.assertion.value" }).getMe({}))).toBe(Code.Unauthenticated);
  });
});

describe("Refresh and Logout", () => {
  it("rotates the refresh token: the new one works, the old one is spent", async () => {
    const { tokens } = await signUp();
    const first = await t.client.refresh({ refreshToken: tokens.refreshToken });
    expect(first.tokens?.refreshToken).not.toBe(tokens.refreshToken);
    const { identity } = await t.gateway.authenticate({ accessToken: first.tokens!.accessToken });
    const second = await t.client.refresh({ refreshToken: first.tokens!.refreshToken });
    const again = await t.gateway.authenticate({ accessToken: second.tokens!.accessToken });
    expect(again.identity?.sessionId).toBe(identity?.sessionId);
  });

  it("sets the refresh cookie on sign-up and reads it back in Refresh and Logout", async () => {
    const email = uniqueEmail();
    let setCookie: string[] = [];
    await t.client.signUp(
      { email, password: STRONG_PASSWORD, displayName: "" },
      { onHeader: (h) => (setCookie = h.getSetCookie()) },
    );
    expect(setCookie).toHaveLength(1);
    const cookie = setCookie[0]!;
    expect(cookie).toMatch(new RegExp(`^${REFRESH_COOKIE}=[\\w-]+;`));
    expect(cookie).toContain("Path=/portico.auth.v1.AuthService");
    expect(cookie).toContain("HttpOnly");
    expect(cookie).toContain("SameSite=Strict");
    expect(cookie).not.toContain("Secure");
    const pair = cookie.split(";")[0]!;

    let refreshed: string[] = [];
    const res = await t
      .withHeaders({ cookie: `theme=dark; ${pair}`, "x-forwarded-proto": "https" })
      .refresh({}, { onHeader: (h) => (refreshed = h.getSetCookie()) });
    expect(res.user?.email).toBe(email);
    expect(refreshed[0]).toContain("Secure");
    const next = refreshed[0]!.split(";")[0]!;

    let cleared: string[] = [];
    await t.withHeaders({ cookie: next }).logout({}, { onHeader: (h) => (cleared = h.getSetCookie()) });
    expect(cleared[0]).toMatch(new RegExp(`^${REFRESH_COOKIE}=;`));
    expect(cleared[0]).toContain("Max-Age=0");
    expect(await codeOf(t.withHeaders({ cookie: next }).refresh({}))).toBe(Code.Unauthenticated);
  });

  it("gives a browser the refresh token only in the httpOnly cookie, never in the body", async () => {
    const browser = t.withHeaders({ origin: "http://localhost:8080" });
    let setCookie: string[] = [];
    const { tokens } = await browser.signUp(
      { email: uniqueEmail(), password: STRONG_PASSWORD, displayName: "" },
      { onHeader: (h) => (setCookie = h.getSetCookie()) },
    );
    expect(tokens?.accessToken).toBeTruthy();
    expect(tokens?.refreshToken).toBe("");
    const pair = setCookie[0]!.split(";")[0]!;
    const refreshed = await t.withHeaders({ origin: "http://localhost:8080", cookie: pair }).refresh({});
    expect(refreshed.tokens?.accessToken).toBeTruthy();
    expect(refreshed.tokens?.refreshToken).toBe("");
  });

  it("Logout ends the session: refresh fails and the access token is refused", async () => {
    const { tokens } = await signUp();
    await t.client.logout({ refreshToken: tokens.refreshToken });
    expect(await codeOf(t.client.refresh({ refreshToken: tokens.refreshToken }))).toBe(Code.Unauthenticated);
    expect(await codeOf(t.gateway.authenticate({ accessToken: tokens.accessToken }))).toBe(Code.Unauthenticated);
  });

  it("Logout through the gateway's identity, without a refresh token, ends that session", async () => {
    const { user, tokens, sessionId } = await signUp();
    await t.as(identityOf(user, sessionId)).logout({});
    expect(await codeOf(t.gateway.authenticate({ accessToken: tokens.accessToken }))).toBe(Code.Unauthenticated);
  });

  it("Refresh without any token answers unauthenticated", async () => {
    expect(await codeOf(t.client.refresh({}))).toBe(Code.Unauthenticated);
    expect(await codeOf(t.client.refresh({ refreshToken: "x".repeat(100) }))).toBe(Code.Unauthenticated);
  });
});

describe("WatchRevocations", () => {
  it("starts with a snapshot, then announces a logout as it happens", async () => {
    const { tokens } = await signUp();
    const { identity } = await t.gateway.authenticate({ accessToken: tokens.accessToken });
    const abort = new AbortController();
    const stream = t.gateway.watchRevocations({}, { signal: abort.signal })[Symbol.asyncIterator]();
    const first = await stream.next();
    expect(first.value?.snapshot).toBe(true);
    expect(first.value?.sessionIds).not.toContain(identity?.sessionId);
    await t.client.logout({ refreshToken: tokens.refreshToken });
    let seen = false;
    while (!seen) {
      const next = await stream.next();
      expect(next.done).toBe(false);
      expect(next.value?.snapshot).toBe(false);
      seen = next.value?.sessionIds.includes(identity!.sessionId) ?? false;
    }
    abort.abort();
    // A new subscriber sees the session in its snapshot.
    const abortAgain = new AbortController();
    const again = t.gateway.watchRevocations({}, { signal: abortAgain.signal })[Symbol.asyncIterator]();
    const snapshot = await again.next();
    expect(snapshot.value?.snapshot).toBe(true);
    expect(snapshot.value?.sessionIds).toContain(identity?.sessionId);
    abortAgain.abort();
  });
});
