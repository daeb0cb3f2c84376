import { screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { protocols } from "../config/web-config.js";
import { renderApp, signUpThroughForm } from "../test/render-app.js";

async function openStream(protocol: (typeof protocols)[number]) {
  const app = renderApp({ protocol });
  await signUpThroughForm(app.user);
  await app.user.click(screen.getByRole("link", { name: "Live stream" }));
  await screen.findByRole("heading", { level: 1, name: "Live stream" });
  return app;
}

async function fill(user: Awaited<ReturnType<typeof openStream>>["user"], label: string, value: string) {
  const input = screen.getByLabelText(label);
  await user.clear(input);
  await user.type(input, value);
}

describe.each(protocols)("GreetStream over %s", (protocol) => {
  it("shows each message as it arrives, then says it is done", async () => {
    const { user } = await openStream(protocol);
    await fill(user, "Name", "Mo");
    await fill(user, "How many", "4");
    await fill(user, "Every (ms)", "300");
    await user.click(screen.getByRole("button", { name: "Start stream" }));

    // Part-way through, some but not all messages are on screen.
    const list = await screen.findByRole("list", { name: "Streamed greetings" });
    const status = screen.getByTestId("stream-status");
    expect(within(list).getAllByRole("listitem").length).toBeLessThan(4);
    expect(status.textContent).toMatch(/Streaming… [1-3] of 4/);

    await expect.poll(() => screen.getByText(/^Done: 4 greetings$/), { timeout: 10_000 }).toBeTruthy();
    const items = within(list).getAllByRole("listitem");
    expect(items).toHaveLength(4);
    for (const item of items) expect(item.textContent).toContain("Mo");
  });
});

describe("stopping a stream", () => {
  it("stops on Stop and keeps what already arrived", async () => {
    const { user } = await openStream("connect");
    await fill(user, "How many", "20");
    await fill(user, "Every (ms)", "400");
    await user.click(screen.getByRole("button", { name: "Start stream" }));
    const list = await screen.findByRole("list", { name: "Streamed greetings" });
    await user.click(screen.getByRole("button", { name: "Stop" }));

    const stopped = await screen.findByText(/^Stopped after \d+ of 20$/);
    const count = Number(/after (\d+)/.exec(stopped.textContent ?? "")?.[1]);
    expect(count).toBeGreaterThan(0);
    expect(count).toBeLessThan(20);
    // Nothing more arrives after Stop.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(within(list).getAllByRole("listitem")).toHaveLength(count);
    expect(screen.getByRole("button", { name: "Start stream" })).toBeTruthy();
  });
});

describe("keyboard use", () => {
  it("starts and stops a stream from the keyboard, focus moving between Start and Stop", async () => {
    const { user } = await openStream("connect");
    await fill(user, "How many", "20");
    await fill(user, "Every (ms)", "300");
    await user.tab(); // from "Every (ms)" to the Start button
    expect(document.activeElement).toBe(screen.getByRole("button", { name: "Start stream" }));
    await user.keyboard("{Enter}");
    const stop = await screen.findByRole("button", { name: "Stop" });
    expect(document.activeElement).toBe(stop);
    await screen.findByRole("list", { name: "Streamed greetings" });
    await user.keyboard("{Enter}");
    await screen.findByText(/^Stopped after \d+ of 20$/);
    expect(document.activeElement).toBe(screen.getByRole("button", { name: "Start stream" }));
  });
});
