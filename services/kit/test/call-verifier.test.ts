import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { createLruCache } from "../src/lru-cache.js";
import { createTestKeys } from "../testing/index.js";

const keys = createTestKeys(["gateway", "greeter", "lang", "auth"]);
const headers = (h: Record<string, string>) => ({ get: (name: string) => h[name] ?? null });
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => "ok",
    (e: unknown) => ConnectError.from(e).code,
  );

describe("createCallVerifier", () => {
  it("follows a delegation two hops deep: the assertion stays addressed to the first service, act names it", async () => {
    const assertion = keys.assertion({ userId: "u1" }, "greeter");
    const langToAuth = keys.identity("lang").signer.serviceToken("auth", ["greeter"]);
    const caller = await keys
      .identity("auth")
      .verifier.verify(headers({ "x-portico-identity": assertion, "x-portico-service": langToAuth }));
    expect(caller).toMatchObject({ user: { userId: "u1" }, service: "lang", chain: ["gateway", "greeter", "lang"] });
    // lang claiming the user came to it directly: the assertion is not addressed to lang.
    const direct = keys.identity("lang").signer.serviceToken("auth");
    const auth = keys.identity("auth").verifier;
    expect(await codeOf(auth.verify(headers({ "x-portico-identity": assertion, "x-portico-service": direct })))).toBe(
      Code.Unauthenticated,
    );
  });

  it("never takes one kind of token for the other, even once the first is cached", async () => {
    const verifier = keys.identity("greeter").verifier;
    const serviceToken = keys.identity("gateway").signer.serviceToken("greeter");
    expect((await verifier.verify(headers({ "x-portico-service": serviceToken }))).service).toBe("gateway");
    expect(await codeOf(verifier.verify(headers({ "x-portico-identity": serviceToken })))).toBe(Code.Unauthenticated);
    const assertion = keys.assertion({ userId: "u1" }, "greeter");
    expect((await verifier.verify(headers({ "x-portico-identity": assertion }))).user?.userId).toBe("u1");
    expect(await codeOf(verifier.verify(headers({ "x-portico-service": assertion })))).toBe(Code.Unauthenticated);
  });

  it("keeps at most its bound of verified tokens, least recently used out first, and none past expiry", () => {
    const cache = createLruCache<number>(2);
    cache.set("a", 1, Date.now() + 60_000);
    cache.set("b", 2, Date.now() + 60_000);
    expect(cache.get("a")).toBe(1);
    cache.set("c", 3, Date.now() + 60_000);
    expect(cache.get("b")).toBeUndefined();
    expect(cache.get("a")).toBe(1);
    expect(cache.size).toBe(2);
    cache.set("d", 4, Date.now() - 1);
    expect(cache.get("d")).toBeUndefined();
  });
});
