import { screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { newAccount, renderApp, signUpThroughForm } from "../test/render-app.js";

describe("greeting language", () => {
  it("lists the languages, greets in the one chosen, and keeps the choice across a reload", async () => {
    const first = renderApp();
    await signUpThroughForm(first.user, newAccount("Ada"));
    const select = (await screen.findByLabelText("Greeting language")) as HTMLSelectElement;
    await expect.poll(() => select.disabled).toBe(false);
    expect(select.value).toBe("en");
    expect([...select.options].map((o) => o.value)).toEqual(["en", "es", "fr", "de", "ja"]);
    expect(screen.getByRole("option", { name: "Español (Spanish)" })).toBeTruthy();

    await first.user.selectOptions(select, "es");
    // Disabled while SetLanguage runs and GetLanguage confirms it.
    await expect.poll(() => !select.disabled && select.value).toBe("es");
    await first.user.click(screen.getByRole("button", { name: "Greet" }));
    const greeting = await screen.findByTestId("greeting");
    expect(greeting.textContent).toBe("Hola, Ada!");
    expect(greeting.getAttribute("lang")).toBe("es");
    expect(screen.queryByTestId("language-fallback")).toBeNull();
    first.unmount();

    // The choice lives in the lang service, not in the page: a reload shows it and greets in it.
    const second = renderApp({ jar: first.jar });
    const again = (await screen.findByLabelText("Greeting language")) as HTMLSelectElement;
    await expect.poll(() => again.value).toBe("es");
    await second.user.selectOptions(again, "ja");
    await expect.poll(() => !again.disabled && again.value).toBe("ja");
    await second.user.click(screen.getByRole("button", { name: "Greet" }));
    await expect.poll(() => screen.queryByTestId("greeting")?.textContent).toBe("こんにちは、Adaさん！");
  });
});
