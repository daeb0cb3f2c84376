import { screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { newAccount, renderApp, signUpThroughForm } from "../test/render-app.js";

describe("profile", () => {
  it("shows who GetMe says you are", async () => {
    const { user } = renderApp();
    const account = await signUpThroughForm(user, newAccount("Ines"));
    await user.click(screen.getByRole("link", { name: "Profile" }));
    expect((await screen.findByTestId("profile-email")).textContent).toBe(account.email);
    expect(screen.getByTestId("profile-name").textContent).toBe("Ines");
    expect(document.activeElement).toBe(screen.getByRole("heading", { level: 1, name: "Profile" }));
  });

  it("logging out on all devices ends this session too, and a reload stays logged out", async () => {
    const first = renderApp();
    await signUpThroughForm(first.user);
    await first.user.click(screen.getByRole("link", { name: "Profile" }));
    await first.user.click(await screen.findByRole("button", { name: "Log out on all devices" }));
    expect(await screen.findByRole("heading", { name: "Log in to Portico" })).toBeTruthy();
    first.unmount();

    renderApp({ jar: first.jar });
    expect(await screen.findByRole("heading", { name: "Log in to Portico" })).toBeTruthy();
  });
});
