import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { AuthService } from "@portico/gen/portico/auth/v1/auth_pb.js";
import { screen, within } from "@testing-library/react";
import { describe, expect, inject, it } from "vitest";
import { createPorticoTransport } from "../rpc/portico-transport.js";
import { createCookieFetch } from "../test/cookie-fetch.js";
import { newAccount, renderApp, signUpThroughForm } from "../test/render-app.js";

describe("sign up and log in", () => {
  it("shows the server's field errors next to the fields they are about, and focuses the first", async () => {
    const { user } = renderApp({ path: "/signup" });
    await user.type(await screen.findByLabelText("Email"), "not-an-email");
    await user.type(screen.getByLabelText("Password"), "short");
    await user.click(screen.getByRole("button", { name: "Sign up" }));

    const email = screen.getByLabelText("Email");
    await expect.poll(() => email.getAttribute("aria-invalid")).toBe("true");
    const emailError = document.getElementById(email.getAttribute("aria-describedby")?.split(" ").at(-1) ?? "");
    expect(emailError?.textContent).toMatch(/\S/);
    const password = screen.getByLabelText("Password");
    expect(password.getAttribute("aria-invalid")).toBe("true");
    expect(password.closest(".field")?.querySelector(".field-error")?.textContent).toMatch(/8|characters|short/i);
    expect(document.activeElement).toBe(email);
    // Still signed out: nothing was created.
    expect(screen.queryByRole("button", { name: "Log out" })).toBeNull();
  });

  it("signs up, logs out, and logs back in with the same account", async () => {
    const { user } = renderApp({ path: "/" });
    const account = await signUpThroughForm(user, newAccount("Grace"));
    expect(screen.getByRole("heading", { level: 1 }).textContent).toBe("Hello, Grace");

    await user.click(screen.getByRole("button", { name: "Log out" }));
    await screen.findByRole("heading", { name: "Log in to Portico" });
    await user.type(screen.getByLabelText("Email"), account.email);
    await user.type(screen.getByLabelText("Password"), account.password);
    await user.click(screen.getByRole("button", { name: "Log in" }));
    expect(await screen.findByRole("heading", { level: 1, name: "Hello, Grace" })).toBeTruthy();
  });

  it("says in plain words when the password is wrong", async () => {
    const first = renderApp();
    const account = await signUpThroughForm(first.user);
    first.unmount();

    const { user } = renderApp({ path: "/login" });
    await user.type(await screen.findByLabelText("Email"), account.email);
    await user.type(screen.getByLabelText("Password"), "not the password");
    await user.click(screen.getByRole("button", { name: "Log in" }));
    const alert = await screen.findByRole("alert");
    expect(within(alert).getByText("That email and password do not match an account.")).toBeTruthy();
  });

  it("says when to try again once sign-ups from one address are rate limited", async () => {
    // SignUp allows 20 a minute per client address (its policy in auth.proto); use them up.
    // (TEST-NET-2: an address no other test's browser uses.)
    const clientIp = "198.51.100.7";
    const browser = createCookieFetch({ clientIp });
    const auth = createClient(
      AuthService,
      createPorticoTransport({ baseUrl: inject("gatewayUrl"), protocol: "connect", fetch: browser.fetch }),
    );
    let limited = false;
    for (let i = 0; i < 40 && !limited; i++) {
      limited = await auth.signUp(newAccount("Spam")).then(
        () => false,
        (err) => ConnectError.from(err).code === Code.ResourceExhausted,
      );
    }
    expect(limited).toBe(true);

    // Another browser on the same address (without the cookies of the sign-ups above).
    const { user } = renderApp({ jar: createCookieFetch({ clientIp }), path: "/signup" });
    const account = newAccount("Late");
    await user.type(await screen.findByLabelText("Display name"), account.displayName);
    await user.type(screen.getByLabelText("Email"), account.email);
    await user.type(screen.getByLabelText("Password"), account.password);
    await user.click(screen.getByRole("button", { name: "Sign up" }));
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toMatch(/Too many requests right now\. Try again in \d+ seconds?\./);
    expect(screen.queryByRole("button", { name: "Log out" })).toBeNull();
  });

  it("tells the user when the platform cannot be reached", async () => {
    // A port nothing listens on: a real connection failure, not a stub.
    const { user } = renderApp({ path: "/login", baseUrl: inject("unreachableUrl") });
    await user.type(await screen.findByLabelText("Email"), "ada@example.com");
    await user.type(screen.getByLabelText("Password"), "whatever password");
    await user.click(screen.getByRole("button", { name: "Log in" }));
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("Can't reach Portico");
  });
});
