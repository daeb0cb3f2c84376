import { createClient } from "@connectrpc/connect";
import { AuthService } from "@portico/gen/portico/auth/v1/auth_pb.js";
import { GreeterService } from "@portico/gen/portico/greeter/v1/greeter_pb.js";
import { screen } from "@testing-library/react";
import { describe, expect, inject, it } from "vitest";
import { createPorticoTransport } from "../rpc/portico-transport.js";
import { createCookieFetch } from "../test/cookie-fetch.js";
import { newAccount, renderApp, signUpThroughForm } from "../test/render-app.js";
import { createSession, type Session } from "./session.js";

const refreshPath = "/portico.auth.v1.AuthService/Refresh";

/** A browser's fetch (cookie jar) that also counts the Refresh calls it makes. */
function countingBrowser() {
  const jar = createCookieFetch();
  const calls: string[] = [];
  const fetch: typeof globalThis.fetch = (input, init) => {
    calls.push(new URL(String(input)).pathname);
    return jar.fetch(input, init);
  };
  return { ...jar, fetch, refreshes: () => calls.filter((p) => p === refreshPath).length };
}

/** A session signed in through the real SignUp, outside React. */
async function signedInSession(fetch: typeof globalThis.fetch) {
  const baseUrl = inject("gatewayUrl");
  const bare = createPorticoTransport({ baseUrl, protocol: "connect", fetch });
  const session = createSession({ transport: () => bare, crossTab: false });
  const account = newAccount("Kit");
  const res = await createClient(AuthService, bare).signUp(account);
  session.signIn(res.user, res.tokens);
  return { session, account, baseUrl };
}

describe("tokens", () => {
  it("keeps the access token out of storage and the refresh token in an httpOnly, SameSite=Strict cookie", async () => {
    const { user, jar } = renderApp();
    await signUpThroughForm(user);
    const cookie = jar.cookies().portico_refresh;
    expect(cookie?.value).toMatch(/\S/);
    expect(cookie?.path).toBe("/portico.auth.v1.AuthService");
    expect(cookie?.attributes).toMatch(/HttpOnly/i);
    expect(cookie?.attributes).toMatch(/SameSite=Strict/i);
    const stored = JSON.stringify({ ...window.localStorage, ...window.sessionStorage });
    expect(stored).not.toMatch(/eyJ/); // no JWT anywhere in web storage
    expect(stored).not.toContain(cookie?.value);
  });

  it("stays signed in across a reload through the refresh cookie", async () => {
    const first = renderApp();
    await signUpThroughForm(first.user, newAccount("Noor"));
    first.unmount();

    // A new page load in the same browser: same cookie jar, nothing else carried over.
    renderApp({ jar: first.jar, path: "/profile" });
    expect(await screen.findByText("Restoring your session…")).toBeTruthy();
    expect(await screen.findByRole("button", { name: "Log out" })).toBeTruthy();
    expect((await screen.findByTestId("profile-name")).textContent).toBe("Noor");
  });

  it("after logging out, the cookie is gone and a reload shows the login form", async () => {
    const first = renderApp();
    await signUpThroughForm(first.user);
    await first.user.click(screen.getByRole("button", { name: "Log out" }));
    await screen.findByRole("heading", { name: "Log in to Portico" });
    expect(first.jar.cookies().portico_refresh).toBeUndefined();
    first.unmount();

    renderApp({ jar: first.jar });
    expect(await screen.findByRole("heading", { name: "Log in to Portico" })).toBeTruthy();
  });

  it("renews the access token before it expires, without a failed call", async () => {
    // The test platform issues 10 s tokens; the session renews a fifth of that before expiry.
    const browser = countingBrowser();
    const { session, baseUrl } = await signedInSession(browser.fetch);
    const greeter = createClient(
      GreeterService,
      createPorticoTransport({ baseUrl, protocol: "connect", session, fetch: browser.fetch }),
    );
    const before = await session.accessToken();
    await expect.poll(() => browser.refreshes(), { timeout: 15_000, interval: 250 }).toBeGreaterThanOrEqual(1);
    const after = await session.accessToken();
    expect(after).not.toBe(before);
    await new Promise((r) => setTimeout(r, 3_000)); // past the first token's expiry
    expect((await greeter.greet({ name: "later" })).greeting).toContain("later");
    session.stop(); // stop the renewal timer
  });

  it("renews once and retries when a call is answered unauthenticated", async () => {
    const browser = countingBrowser();
    const { session, baseUrl } = await signedInSession(browser.fetch);
    let sent = 0;
    // The token the server refuses: one the session no longer holds (e.g. from before a key change).
    const stale: Session = {
      ...session,
      accessToken: async () => (sent++ === 0 ? "eyJhbGciOiJub25lIn0.e30." : session.accessToken()),
    };
    const greeter = createClient(
      GreeterService,
      createPorticoTransport({ baseUrl, protocol: "connect", session: stale, fetch: browser.fetch }),
    );
    const res = await greeter.greet({ name: "again" });
    expect(res.greeting).toContain("again");
    expect(browser.refreshes()).toBe(1);
    expect(session.getState().status).toBe("signed-in");
    session.stop();
  });

  it("sends the user to log in, saying why, when the session was ended elsewhere", async () => {
    const { user } = renderApp();
    const account = await signUpThroughForm(user);

    // The same user on another device ends every session.
    const other = createCookieFetch();
    const baseUrl = inject("gatewayUrl");
    const bare = createPorticoTransport({ baseUrl, protocol: "connect", fetch: other.fetch });
    const otherSession = createSession({ transport: () => bare, crossTab: false });
    const login = await createClient(AuthService, bare).login({ email: account.email, password: account.password });
    otherSession.signIn(login.user, login.tokens);
    await createClient(
      AuthService,
      createPorticoTransport({ baseUrl, protocol: "connect", session: otherSession, fetch: other.fetch }),
    ).logoutAll({});
    otherSession.stop();

    await user.click(screen.getByRole("button", { name: "Greet" }));
    expect(await screen.findByRole("heading", { name: "Log in to Portico" })).toBeTruthy();
    expect(screen.getByText("Your session has ended. Please log in again.")).toBeTruthy();
  });
});
