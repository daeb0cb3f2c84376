import { screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { protocols } from "../config/web-config.js";
import { renderApp, signUpThroughForm } from "../test/render-app.js";

describe.each(protocols)("greeting over %s", (protocol) => {
  it("shows the greeting and refreshes the history by invalidation", async () => {
    const { user } = renderApp({ protocol });
    await signUpThroughForm(user);
    expect(await screen.findByText("No greetings yet. Say hello and it will show up here.")).toBeTruthy();

    const name = screen.getByLabelText("Name");
    await user.clear(name);
    await user.type(name, `Lin ${protocol}`);
    await user.click(screen.getByRole("button", { name: "Greet" }));

    const greeting = await screen.findByTestId("greeting");
    expect(greeting.textContent).toContain(`Lin ${protocol}`);
    const history = await screen.findByRole("list", { name: "Greeting history" });
    expect(within(history).getByText(greeting.textContent ?? "")).toBeTruthy();
  });
});

describe("history", () => {
  it("pages through older greetings", async () => {
    const { user } = renderApp({ path: "/" });
    await signUpThroughForm(user);
    const name = screen.getByLabelText("Name");
    for (let i = 1; i <= 7; i++) {
      await user.clear(name);
      await user.type(name, `guest ${i}`);
      await user.click(screen.getByRole("button", { name: "Greet" }));
      await expect.poll(() => screen.queryByTestId("greeting")?.textContent ?? "").toContain(`guest ${i}`);
    }
    // The home page shows 5 per page, newest first.
    const history = await screen.findByRole("list", { name: "Greeting history" });
    await expect.poll(() => within(history).queryAllByRole("listitem").length).toBe(5);
    expect(within(history).getAllByRole("listitem")[0]?.textContent).toContain("guest 7");
    await user.click(screen.getByRole("button", { name: "Show older greetings" }));
    await expect.poll(() => within(history).queryAllByRole("listitem").length).toBe(7);
    expect(within(history).getAllByRole("listitem")[6]?.textContent).toContain("guest 1");
    expect(screen.queryByRole("button", { name: "Show older greetings" })).toBeNull();
  });
});
