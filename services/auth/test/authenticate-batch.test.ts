import { Code, createClient } from "@connectrpc/connect";
import { AuthService } from "@portico/gen/portico/auth/v1/auth_pb.js";
import { maxAuthenticateBatch } from "@portico/kit/authenticate-codec";
import { describe, expect, it } from "vitest";
import { createBatchAuthenticator } from "../src/auth-service.js";
import { codeOf, errorOf, gatewayTransports, signUp, useTestAuth } from "./test-auth.js";

// AuthenticateBatch, the gateway's cache misses of one turn in one call: each token answered at its
// index as Authenticate would answer it alone, in every protocol (the fast path takes binary Connect
// and gRPC, the router the rest, compressed calls included).

const t = useTestAuth("authenticate_batch");

describe("AuthenticateBatch", () => {
  for (const [name, make] of Object.entries(gatewayTransports(t))) {
    it(`${name}: each token answered at its index, a bad or revoked one refused alone with Authenticate's error`, async () => {
      const client = createClient(AuthService, make());
      const ada = await signUp(t);
      const bob = await signUp(t);
      const revoked = await signUp(t);
      await t.client.logout({ refreshToken: revoked.tokens.refreshToken });
      const tokens = [ada.tokens.accessToken, "garbage", revoked.tokens.accessToken, bob.tokens.accessToken, ""];
      const { results } = await client.authenticateBatch({ accessTokens: tokens });
      expect(results).toHaveLength(tokens.length);
      const alone = await Promise.all(
        tokens.map((accessToken) => errorOf(t.gateway.authenticate({ accessToken })).catch(() => undefined)),
      );
      expect(results[0]?.result).toMatchObject({
        case: "identity",
        value: { userId: ada.user.id, sessionId: ada.sessionId, tier: "free", roles: [] },
      });
      expect(results[3]?.result).toMatchObject({ case: "identity", value: { userId: bob.user.id, sessionId: bob.sessionId } });
      for (const i of [1, 2, 4]) {
        expect(results[i]?.result).toEqual({
          case: "failure",
          value: expect.objectContaining({ code: Code.Unauthenticated, message: alone[i]?.rawMessage }),
        });
      }
      expect(alone[2]?.rawMessage).toBe("access token has been revoked");
      // The same expiry as Authenticate answers for the token.
      const single = await t.gateway.authenticate({ accessToken: ada.tokens.accessToken });
      expect(results[0]?.result.case === "identity" && results[0].result.value.expiresAt).toEqual(single.identity?.expiresAt);
    });
  }

  it("an empty batch answers no results", async () => {
    expect((await t.gateway.authenticateBatch({ accessTokens: [] })).results).toEqual([]);
  });

  it(`more than ${maxAuthenticateBatch.tokens} tokens, or more than ${maxAuthenticateBatch.bytes} bytes of them: invalid_argument, nothing checked`, async () => {
    const { tokens } = await signUp(t);
    const tooMany = await errorOf(
      t.gateway.authenticateBatch({ accessTokens: Array(maxAuthenticateBatch.tokens + 1).fill(tokens.accessToken) }),
    );
    expect(tooMany.code).toBe(Code.InvalidArgument);
    expect(tooMany.rawMessage).toBe(
      `at most ${maxAuthenticateBatch.tokens} access tokens per batch, got ${maxAuthenticateBatch.tokens + 1}`,
    );
    // 17 tokens of 3,856 bytes: 65,552 bytes, just over the limit.
    const tooLong = await errorOf(t.gateway.authenticateBatch({ accessTokens: Array(17).fill("x".repeat(3856)) }));
    expect(tooLong.code).toBe(Code.InvalidArgument);
    expect(tooLong.rawMessage).toBe(`at most ${maxAuthenticateBatch.bytes} bytes of access tokens per batch`);
    // Counted in UTF-8 bytes: 17 tokens of 1,928 "é" are 32,776 characters but 65,552 bytes.
    const wide = await errorOf(t.gateway.authenticateBatch({ accessTokens: Array(17).fill("é".repeat(1928)) }));
    expect(wide.code).toBe(Code.InvalidArgument);
    expect(wide.rawMessage).toBe(`at most ${maxAuthenticateBatch.bytes} bytes of access tokens per batch`);
    // A body far past it is not read whole.
    const huge = await errorOf(t.gateway.authenticateBatch({ accessTokens: Array(40).fill("x".repeat(4000)) }));
    expect(huge.code).toBe(Code.ResourceExhausted);
    // The limits exactly: answered.
    const full = await t.gateway.authenticateBatch({ accessTokens: Array(maxAuthenticateBatch.tokens).fill(tokens.accessToken) });
    expect(full.results.every((r) => r.result.case === "identity")).toBe(true);
  });

  it("answers only the gateway: unauthenticated without a service token, permission_denied from another service", async () => {
    const { tokens } = await signUp(t);
    expect(await codeOf(t.client.authenticateBatch({ accessTokens: [tokens.accessToken] }))).toBe(Code.Unauthenticated);
    expect(await codeOf(t.asService("greeter").authenticateBatch({ accessTokens: [tokens.accessToken] }))).toBe(
      Code.PermissionDenied,
    );
  });

  it("a fault of the process on one token fails that token alone, as internal, and is logged", async () => {
    const logged: unknown[] = [];
    const batch = createBatchAuthenticator(
      async (token) => {
        if (token === "boom") throw new TypeError("cannot read properties of undefined");
        return { userId: token, sessionId: `s-${token}`, tier: "free", roles: [], issuedAtMs: 0, expiresAtMs: 1_000 };
      },
      { error: (...args: unknown[]) => logged.push(args) },
    );
    const outcomes = await batch(["ada", "boom", "bob"]);
    expect(outcomes).toEqual([
      expect.objectContaining({ userId: "ada" }),
      { code: Code.Internal, message: "internal error" },
      expect.objectContaining({ userId: "bob" }),
    ]);
    expect(logged).toHaveLength(1);
  });
});
