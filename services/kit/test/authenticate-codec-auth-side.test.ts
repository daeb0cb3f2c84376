// The auth service's side of Authenticate: it reads requests and writes answers.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { AuthenticateRequestSchema, AuthenticateResponseSchema } from "@portico/gen/portico/auth/v1/auth_pb.js";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { AuthenticatedUser } from "../src/authenticate-codec.js";
import { authenticateResponse, decodeAuthenticateRequest, encodeAuthenticateResponse } from "../src/authenticate-codec.js";

// The fast path's hand-written codec against protobuf-es, which the RPC handler uses: the same
// token out of every request (or the same error), the same bytes for every answer.

const SEED = 16_2026;

/** protobuf-es's answer for a request body: the token, or that it throws. */
function reference(body: Uint8Array): { token: string } | { throws: true } {
  try {
    return { token: fromBinary(AuthenticateRequestSchema, body).accessToken };
  } catch {
    return { throws: true };
  }
}

function ours(body: Uint8Array): { token: string } | { throws: true } {
  try {
    return { token: decodeAuthenticateRequest(body) };
  } catch {
    return { throws: true };
  }
}

const requestOf = (accessToken: string) =>
  toBinary(AuthenticateRequestSchema, create(AuthenticateRequestSchema, { accessToken }));

const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom("", "free", "pro", "admin", "greeter.admin"),
);
const claimsArbitrary: fc.Arbitrary<AuthenticatedUser> = fc.record({
  userId: text,
  sessionId: text,
  tier: text,
  roles: fc.array(text, { maxLength: 5 }),
  expiresAtMs: fc.oneof(
    fc.integer({ min: 0, max: 2 ** 45 }).map((s) => s * 1000),
    fc.integer({ min: 0, max: 2 ** 48 }),
    fc.constantFrom(0, 999, 1000, Number.MAX_SAFE_INTEGER),
    fc.integer({ min: -(2 ** 40), max: -1 }),
    fc.double({ min: -1e12, max: 1e15, noNaN: true }),
  ),
});

describe("the fast path's Authenticate codec", () => {
  it("reads the token of a request as protobuf-es does: the gateway's shape, tokens of every length", () => {
    for (const length of [0, 1, 127, 128, 300, 16_383, 16_384, 70_000]) {
      const token = "e".repeat(length);
      expect(decodeAuthenticateRequest(requestOf(token))).toBe(token);
    }
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 600 }), (token) => {
        expect(decodeAuthenticateRequest(requestOf(token))).toBe(token);
      }),
      { seed: SEED, numRuns: 500 },
    );
  });

  it("agrees with protobuf-es on arbitrary and mutated bodies: unknown fields, repeats, bad UTF-8, truncation", () => {
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 60 }),
      fc
        .tuple(fc.string({ maxLength: 80 }), fc.uint8Array({ maxLength: 6 }), fc.nat(90), fc.nat(255))
        .map(([token, extra, at, byte]) => {
          const bytes = Buffer.concat([requestOf(token), extra]);
          if (at < bytes.length) bytes[at] = byte;
          return new Uint8Array(bytes);
        }),
      fc.tuple(fc.string({ maxLength: 80 }), fc.nat(90)).map(([token, cut]) => requestOf(token).subarray(0, cut)),
    );
    fc.assert(
      fc.property(body, (bytes) => {
        expect(ours(bytes)).toEqual(reference(bytes));
      }),
      { seed: SEED, numRuns: 3000 },
    );
    // A non-ASCII token, a repeated field (the last wins), an unknown field, a group, an overlong varint.
    for (const bytes of [
      requestOf("tökén"),
      Buffer.concat([requestOf("first"), requestOf("second")]),
      Buffer.concat([Buffer.from([0x10, 0x05]), requestOf("after-unknown")]),
      Buffer.from([0x0a, 0x82, 0x00, 0x41, 0x42]),
      Buffer.from([0x0a, 0x80, 0x80, 0x80, 0x80, 0x00]),
      Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x41]),
      Buffer.from([0x0b, 0x0c]),
      Buffer.from([0x0a, 0x02, 0xc3, 0x28]),
    ]) {
      expect(ours(bytes), Buffer.from(bytes).toString("hex")).toEqual(reference(bytes));
    }
  });

  it("writes every answer byte for byte as protobuf-es does, bare and in a gRPC envelope", () => {
    fc.assert(
      fc.property(claimsArbitrary, (claims) => {
        let expected: Buffer;
        try {
          expected = Buffer.from(toBinary(AuthenticateResponseSchema, authenticateResponse(claims)));
        } catch {
          // A fractional expiry is no int64: both refuse it.
          expect(() => encodeAuthenticateResponse(claims, false)).toThrow();
          return;
        }
        expect(encodeAuthenticateResponse(claims, false).equals(expected)).toBe(true);
        const envelope = encodeAuthenticateResponse(claims, true);
        expect(envelope[0]).toBe(0);
        expect(envelope.readUInt32BE(1)).toBe(expected.length);
        expect(envelope.subarray(5).equals(expected)).toBe(true);
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });

  it("answers the claims the token carries, read back by protobuf-es", () => {
    const claims: AuthenticatedUser = {
      userId: "0b9a4c1e-5d3f-4e7a-9c2b-1f8e6d4a3b21",
      sessionId: "s-1",
      tier: "pro",
      roles: ["user", "greeter.admin"],
      expiresAtMs: 1_796_000_900_000,
    };
    const identity = fromBinary(AuthenticateResponseSchema, encodeAuthenticateResponse(claims, false)).identity;
    expect(identity?.userId).toBe(claims.userId);
    expect(identity?.sessionId).toBe("s-1");
    expect(identity?.tier).toBe("pro");
    expect(identity?.roles).toEqual(["user", "greeter.admin"]);
    expect(identity?.expiresAt?.seconds).toBe(1_796_000_900n);
    expect(identity?.expiresAt?.nanos).toBe(0);
  });
});
