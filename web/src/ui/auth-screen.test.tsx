import { screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { freePort } from "../test/free-port.js";
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

  it("tells the user when the platform cannot be reached", async () => {
    // A port nothing listens on: a real connection failure, not a stub.
    const { user } = renderApp({ path: "/login", baseUrl: `http://127.0.0.1:${await freePort()}` });
    await user.type(await screen.findByLabelText("Email"), "ada@example.com");
    await user.type(screen.getByLabelText("Password"), "whatever password");
    await user.click(screen.getByRole("button", { name: "Log in" }));
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("Can't reach Portico");
  });
});
