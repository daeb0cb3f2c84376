// The auth cache and revocations across auth replicas: a replica learns of another's revocation by
// polling (about 1 s), so right after the revocation stream ended a session, a re-authentication
// may be answered "valid" by a replica that has not read it yet. The soak found a logout on one
// gateway then not honoured by the other for the cache's whole TTL (npm run soak, README).
import type { TokenSigner } from "@portico/kit";
import { createTestKeys } from "@portico/kit/testing";
import { describe, expect, it } from "vitest";
import { createAuthCache, type VerifiedToken } from "../src/auth-cache.js";

const keys = createTestKeys();
const session = (sessionId: string): VerifiedToken => ({
  identity: { userId: "u1", tier: "free", roles: [], sessionId },
  expiresAtMs: Date.now() + 15 * 60_000,
});

describe("auth cache", () => {
  it("refuses a token of a session the revocation stream ended, even when an auth replica still calls it valid", async () => {
    // What the auth replica that answers Authenticate says: it has not read the revocation yet.
    const answers = new Map([
      ["t1", session("s1")],
      ["t2", session("s2")],
    ]);
    const cache = createAuthCache({
      verify: async (token) => answers.get(token) as VerifiedToken,
      signer: keys.identity("gateway").signer,
      ttlMs: 60_000,
      degradedTtlMs: 5_000,
    });
    cache.setDegraded(false);
    expect((await cache.verify("t1")).identity.sessionId).toBe("s1");
    expect(cache.get("t1")).toBeDefined();

    cache.evictSessions(["s1"]);
    expect(cache.get("t1")).toBeUndefined();
    await expect(cache.verify("t1")).rejects.toThrow(/revoked/);
    expect(cache.get("t1")).toBeUndefined();
    // Another session of the same user is untouched.
    expect((await cache.verify("t2")).identity.sessionId).toBe("s2");
    // A reconnecting stream's snapshot clears the cache but not what is known to be ended.
    cache.clear();
    await expect(cache.verify("t1")).rejects.toThrow(/revoked/);
    cache.close();
  });

  it("evicts the tokens of a withdrawn signing key and refuses them, even when an auth replica still calls them valid", async () => {
    // JWT-shaped tokens: the header's kid is all the cache reads of them.
    const jwt = (kid: string, n: number) =>
      `${Buffer.from(JSON.stringify({ alg: "ES256", kid, typ: "at+jwt" })).toString("base64url")}.payload${n}.sig`;
    const [a1, a2, b1] = [jwt("key-a", 1), jwt("key-a", 2), jwt("key-b", 3)] as [string, string, string];
    const cache = createAuthCache({
      verify: async () => session("s1"),
      signer: keys.identity("gateway").signer,
      ttlMs: 60_000,
      degradedTtlMs: 5_000,
    });
    cache.setDegraded(false);
    for (const token of [a1, a2, b1, "not-a-jwt"]) await cache.verify(token);

    cache.evictKeys(["key-a"]);
    expect([a1, a2, b1, "not-a-jwt"].map((token) => cache.get(token) !== undefined)).toEqual([false, false, true, true]);
    await expect(cache.verify(a1)).rejects.toThrow("access token is signed with a withdrawn key");
    // A reconnecting stream's snapshot clears the cache but not what is known to be withdrawn.
    cache.clear();
    await expect(cache.verify(a2)).rejects.toThrow("access token is signed with a withdrawn key");
    expect((await cache.verify(b1)).identity.sessionId).toBe("s1");
    cache.close();
  });

  it("remembers at most maxEntries withdrawn keys and ended sessions, the newest", async () => {
    const jwt = (kid: string) => `${Buffer.from(JSON.stringify({ alg: "ES256", kid })).toString("base64url")}.p.s`;
    const cache = createAuthCache({
      verify: async (token) => session(token.startsWith("s") ? token : "s0"),
      signer: keys.identity("gateway").signer,
      ttlMs: 60_000,
      degradedTtlMs: 5_000,
      maxEntries: 2,
    });
    cache.evictKeys(["key-a", "key-b"]);
    cache.evictKeys(["key-c"]);
    cache.evictSessions(["s1", "s2", "s3"]);
    // The oldest of each fell out; the two newest are still refused.
    expect((await cache.verify(jwt("key-a"))).identity.sessionId).toBe("s0");
    for (const kid of ["key-b", "key-c"]) await expect(cache.verify(jwt(kid))).rejects.toThrow(/withdrawn key/);
    expect((await cache.verify("s1")).identity.sessionId).toBe("s1");
    for (const id of ["s2", "s3"]) await expect(cache.verify(id)).rejects.toThrow(/revoked/);
    cache.close();
  });

  it("forgets an ended session after revokedSessionMemoryMs", async () => {
    const cache = createAuthCache({
      verify: async () => session("s1"),
      signer: keys.identity("gateway").signer,
      ttlMs: 60_000,
      degradedTtlMs: 5_000,
      revokedSessionMemoryMs: 1,
    });
    cache.evictSessions(["s1"]);
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect((await cache.verify("t1")).identity.sessionId).toBe("s1");
    cache.close();
  });

  it("signs one assertion per identity, audience and client address, shared by every token of that identity", async () => {
    const real = keys.identity("gateway").signer;
    let signatures = 0;
    const signer: TokenSigner = {
      service: real.service,
      ttlSeconds: real.ttlSeconds,
      assertion: (...args) => {
        signatures++;
        return real.assertion(...args);
      },
      serviceToken: (...args) => real.serviceToken(...args),
    };
    const answers = new Map([
      ["t1", session("s1")],
      ["t2", session("s1")],
      ["t3", session("s2")],
      ["t4", { ...session("s1"), identity: { ...session("s1").identity, roles: ["admin"] } }],
      ["t5", { ...session("s1"), identity: { ...session("s1").identity, roles: ["a,b"] } }],
      ["t6", { ...session("s1"), identity: { ...session("s1").identity, roles: ["a", "b"] } }],
    ]);
    const cache = createAuthCache({
      verify: async (token) => answers.get(token) as VerifiedToken,
      signer,
      ttlMs: 60_000,
      degradedTtlMs: 5_000,
    });
    const assertion = async (token: string, audience = "greeter", address = "10.0.0.1") =>
      cache.headers(await cache.verify(token), audience, address)["x-portico-identity"];
    // A session's next token (a Refresh) carries the same identity: the same assertion, no new signature.
    const first = await assertion("t1");
    expect(await assertion("t2")).toBe(first);
    expect(signatures).toBe(1);
    // Anything asserted that differs gets its own.
    for (const other of [assertion("t3"), assertion("t4"), assertion("t1", "lang"), assertion("t1", "greeter", "10.0.0.2")]) {
      expect(await other).not.toBe(first);
    }
    expect(signatures).toBe(5);
    // Roles that read the same when joined are still different assertions.
    expect(await assertion("t5")).not.toBe(await assertion("t6"));
    expect(signatures).toBe(7);
    // A revocation forgets them all.
    cache.evictSessions(["s2"]);
    await assertion("t2");
    expect(signatures).toBe(8);
    cache.close();
  });
});
