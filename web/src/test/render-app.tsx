import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { inject } from "vitest";
import { App } from "../app.js";
import type { PorticoProtocol } from "../config/web-config.js";
import { PorticoProvider } from "../portico-provider.js";
import { type CookieFetch, createCookieFetch } from "./cookie-fetch.js";

export interface RenderAppOptions {
  /** The browser's cookie jar; pass the same one to "reload" the page as the same browser. */
  readonly jar?: CookieFetch;
  readonly protocol?: PorticoProtocol;
  readonly path?: string;
  /** Default: the gateway the global setup started. */
  readonly baseUrl?: string;
}

/** Renders the whole app against the real platform, as one page load in one browser. */
export function renderApp(options: RenderAppOptions = {}) {
  window.history.replaceState(null, "", options.path ?? "/");
  const jar = options.jar ?? createCookieFetch();
  const result = render(
    <PorticoProvider
      config={{ baseUrl: options.baseUrl ?? inject("gatewayUrl"), protocol: options.protocol ?? "connect" }}
      fetch={jar.fetch}
      crossTab={false}
    >
      <App />
    </PorticoProvider>,
  );
  return { ...result, jar, user: userEvent.setup() };
}

let counter = 0;

/** A fresh account's details; the email is unique across test runs. */
export function newAccount(displayName = "Ada") {
  counter++;
  return {
    displayName,
    email: `${displayName.toLowerCase()}-${Date.now().toString(36)}-${counter}-${Math.random().toString(36).slice(2, 8)}@example.com`,
    password: "correct horse battery staple",
  };
}

type User = ReturnType<typeof userEvent.setup>;

/** Signs up through the form, as a person would, and waits for the signed-in home screen. */
export async function signUpThroughForm(user: User, account = newAccount()) {
  await user.click(await screen.findByRole("link", { name: "Create an account" }));
  await user.type(screen.getByLabelText("Display name"), account.displayName);
  await user.type(screen.getByLabelText("Email"), account.email);
  await user.type(screen.getByLabelText("Password"), account.password);
  await user.click(screen.getByRole("button", { name: "Sign up" }));
  await screen.findByRole("button", { name: "Log out" });
  return account;
}
