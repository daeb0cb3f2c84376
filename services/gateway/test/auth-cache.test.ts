// The auth cache and revocations across auth replicas: a replica learns of another's revocation by
// polling (about 1 s), so right after the revocation stream ended a session, a re-authentication
// may be answered "valid" by a replica that has not read it yet. The soak found a logout on one
// gateway then not honoured by the other for the cache's whole TTL (npm run soak, README).
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
});
