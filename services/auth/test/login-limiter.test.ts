import { Code, type ConnectError } from "@connectrpc/connect";
import { identityHeaders } from "@portico/kit";
import { describe, expect, it } from "vitest";
import { RetryInfoSchema } from "../src/error-details.js";
import { codeOf, errorOf, STRONG_PASSWORD, uniqueEmail, useTestAuth } from "./test-auth.js";

const t = useTestAuth("login_limiter", {
  loginLimits: {
    accountFailures: 3,
    accountLockMs: 1_000,
    ipFailures: 6,
    ipWindowMs: 60_000,
    signUps: 3,
    signUpWindowMs: 60_000,
  },
});

let ipCounter = 0;
/**
 * A client that the limiter sees as a fresh IP address: calls as the gateway forwards them for no
 * user, its service token next to the x-portico-client-address it decided.
 */
function fromNewAddress() {
  const ip = `203.0.113.${++ipCounter}`;
  return { ip, client: t.withHeaders(() => ({ ...t.gatewayHeaders(), "x-portico-client-address": ip })) };
}

function retryDelaySeconds(error: ConnectError): number {
  const [info] = error.findDetails(RetryInfoSchema) as unknown as { retryDelay?: { seconds: bigint } }[];
  return Number(info?.retryDelay?.seconds ?? -1);
}

async function account() {
  const { client } = fromNewAddress();
  const email = uniqueEmail("target");
  await client.signUp({ email, password: STRONG_PASSWORD, displayName: "" });
  return email;
}

describe("failed logins", () => {
  it("lock the account after a few failures, with resource_exhausted and a retry delay, even for the right password", async () => {
    const email = await account();
    const { client } = fromNewAddress();
    for (let i = 0; i < 3; i++)
      expect(await codeOf(client.login({ email, password: "wrong password here" }))).toBe(Code.Unauthenticated);
    const locked = await errorOf(client.login({ email, password: STRONG_PASSWORD }));
    expect(locked.code).toBe(Code.ResourceExhausted);
    expect(retryDelaySeconds(locked)).toBeGreaterThanOrEqual(1);
    // Another address does not help: the limit is per account.
    expect(await codeOf(fromNewAddress().client.login({ email, password: STRONG_PASSWORD }))).toBe(Code.ResourceExhausted);
    // After the delay the right password works, and success resets the count.
    await expect
      .poll(() => codeOf(client.login({ email, password: STRONG_PASSWORD })), { timeout: 5_000, interval: 250 })
      .toBe("ok");
    expect(await codeOf(client.login({ email, password: "wrong password here" }))).toBe(Code.Unauthenticated);
    expect(await codeOf(client.login({ email, password: STRONG_PASSWORD }))).toBe("ok");
  });

  it("lock an unknown email the same way, so the lockout reveals nothing", async () => {
    const { client } = fromNewAddress();
    const email = uniqueEmail("nobody");
    for (let i = 0; i < 3; i++)
      expect(await codeOf(client.login({ email, password: "wrong password here" }))).toBe(Code.Unauthenticated);
    expect(await codeOf(client.login({ email, password: "wrong password here" }))).toBe(Code.ResourceExhausted);
  });

  it("are limited per IP address across accounts; other addresses are unaffected", async () => {
    const { client } = fromNewAddress();
    for (let i = 0; i < 6; i++) {
      expect(await codeOf(client.login({ email: uniqueEmail("spray"), password: "wrong password here" }))).toBe(
        Code.Unauthenticated,
      );
    }
    const email = await account();
    const error = await errorOf(client.login({ email, password: STRONG_PASSWORD }));
    expect(error.code).toBe(Code.ResourceExhausted);
    expect(retryDelaySeconds(error)).toBeGreaterThan(30);
    expect(await codeOf(fromNewAddress().client.login({ email, password: STRONG_PASSWORD }))).toBe("ok");
  });

  it("believe the client address only from the gateway: another service or a direct caller cannot choose it", async () => {
    const { ip, client } = fromNewAddress();
    for (let i = 0; i < 6; i++) {
      expect(await codeOf(client.login({ email: uniqueEmail("spray"), password: "wrong password here" }))).toBe(
        Code.Unauthenticated,
      );
    }
    const email = await account();
    expect(await codeOf(client.login({ email, password: STRONG_PASSWORD }))).toBe(Code.ResourceExhausted);
    // The same header from the greeter's own token, or with no token at all, names no address:
    // such calls share the "direct" bucket, so they can neither lock out nor escape that address.
    const greeter = t.keys.identity("greeter").signer;
    const fromGreeter = t.withHeaders(() => ({
      [identityHeaders.service]: greeter.serviceToken("auth"),
      "x-portico-client-address": ip,
    }));
    expect(await codeOf(fromGreeter.login({ email, password: STRONG_PASSWORD }))).toBe("ok");
    const direct = t.withHeaders({ "x-portico-client-address": ip });
    expect(await codeOf(direct.login({ email, password: STRONG_PASSWORD }))).toBe("ok");
  });
});

describe("sign-up", () => {
  it("is rate limited per IP address", async () => {
    const { client } = fromNewAddress();
    for (let i = 0; i < 3; i++) {
      expect(await codeOf(client.signUp({ email: uniqueEmail(), password: STRONG_PASSWORD, displayName: "" }))).toBe("ok");
    }
    const error = await errorOf(client.signUp({ email: uniqueEmail(), password: STRONG_PASSWORD, displayName: "" }));
    expect(error.code).toBe(Code.ResourceExhausted);
    expect(retryDelaySeconds(error)).toBeGreaterThan(30);
    expect(
      await codeOf(fromNewAddress().client.signUp({ email: uniqueEmail(), password: STRONG_PASSWORD, displayName: "" })),
    ).toBe("ok");
  });
});
