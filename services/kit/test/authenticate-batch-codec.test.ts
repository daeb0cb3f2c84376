// AuthenticateBatch's hand-written codec, both sides, against protobuf-es: the gateway writes
// requests and reads answers, the auth service's fast path reads requests and writes answers.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import {
  AuthenticateBatchRequestSchema,
  AuthenticateBatchResponseSchema,
  AuthenticateResultSchema,
  IdentitySchema,
} from "@portico/gen/portico/auth/v1/auth_pb.js";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type AuthenticateOutcome,
  authenticateBatchResponse,
  decodeAuthenticateBatchRequest,
  decodeAuthenticateBatchResponse,
  encodeAuthenticateBatchRequest,
  encodeAuthenticateBatchResponse,
} from "../src/authenticate-codec.js";

const SEED = 16_2026;

const requestOf = (accessTokens: string[]) =>
  toBinary(AuthenticateBatchRequestSchema, create(AuthenticateBatchRequestSchema, { accessTokens }));

const text = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: "binary", maxLength: 40 }), fc.constant(""));
const jwtLike = fc.stringMatching(/^[A-Za-z0-9_-]{0,200}\.[A-Za-z0-9_-]{0,300}\.[A-Za-z0-9_-]{0,90}$/);
const tokens = fc.array(fc.oneof(jwtLike, text), { maxLength: 12 });

const outcome: fc.Arbitrary<AuthenticateOutcome> = fc.oneof(
  fc.record({
    userId: text,
    sessionId: text,
    tier: text,
    roles: fc.array(text, { maxLength: 4 }),
    expiresAtMs: fc.oneof(fc.integer({ min: 0, max: 2 ** 48 }), fc.integer({ min: -(2 ** 40), max: -1 })),
  }),
  fc.record({ code: fc.oneof(fc.integer({ min: 1, max: 16 }), fc.integer({ min: -5, max: 2 ** 31 })), message: text }),
);

/** What protobuf-es makes of a request body: its tokens, or that it throws. */
function requestReference(body: Uint8Array): string[] | "throws" {
  try {
    return fromBinary(AuthenticateBatchRequestSchema, body).accessTokens;
  } catch {
    return "throws";
  }
}

function requestOurs(body: Uint8Array): string[] | "throws" {
  try {
    return decodeAuthenticateBatchRequest(body);
  } catch {
    return "throws";
  }
}

/** What the gateway makes of protobuf-es's decoding of an answer. */
function responseReference(body: Uint8Array) {
  return fromBinary(AuthenticateBatchResponseSchema, body).results.map(({ result }) => {
    if (result.case === "failure") return { code: result.value.code, message: result.value.message };
    if (result.case !== "identity" || result.value.userId === "") return undefined;
    const identity = result.value;
    return {
      identity: { userId: identity.userId, tier: identity.tier, roles: [...identity.roles], sessionId: identity.sessionId },
      expiresAtMs: identity.expiresAt ? timestampMs(identity.expiresAt) : Number.POSITIVE_INFINITY,
    };
  });
}

describe("AuthenticateBatch's codec", () => {
  it("writes requests as protobuf-es does and reads them back, empty and non-ASCII tokens included", () => {
    fc.assert(
      fc.property(tokens, (list) => {
        const bytes = encodeAuthenticateBatchRequest(list);
        expect(bytes).toEqual(Buffer.from(requestOf(list)));
        expect(decodeAuthenticateBatchRequest(bytes)).toEqual(list);
      }),
      { seed: SEED, numRuns: 400 },
    );
  });

  it("reads arbitrary and mutated request bodies as protobuf-es does: the same tokens, or both refuse", () => {
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 60 }),
      fc.tuple(tokens, fc.uint8Array({ maxLength: 6 }), fc.nat(200), fc.nat(255)).map(([list, extra, at, byte]) => {
        const bytes = Buffer.concat([requestOf(list), extra]);
        if (at < bytes.length) bytes[at] = byte;
        return new Uint8Array(bytes);
      }),
      fc.tuple(tokens, fc.nat(400)).map(([list, cut]) => requestOf(list).subarray(0, cut)),
    );
    fc.assert(
      fc.property(body, (bytes) => {
        expect(requestOurs(bytes)).toEqual(requestReference(bytes));
      }),
      { seed: SEED, numRuns: 1_000 },
    );
  });

  it("writes answers as protobuf-es does, with and without the gRPC envelope", () => {
    fc.assert(
      fc.property(fc.array(outcome, { maxLength: 8 }), (outcomes) => {
        const reference = Buffer.from(toBinary(AuthenticateBatchResponseSchema, authenticateBatchResponse(outcomes)));
        expect(encodeAuthenticateBatchResponse(outcomes, false)).toEqual(reference);
        const enveloped = encodeAuthenticateBatchResponse(outcomes, true);
        expect(enveloped[0]).toBe(0);
        expect(enveloped.readUInt32BE(1)).toBe(reference.length);
        expect(enveloped.subarray(5)).toEqual(reference);
      }),
      { seed: SEED, numRuns: 400 },
    );
  });

  it("reads answers as protobuf-es does: every result at its index, a failure as its code and message", () => {
    fc.assert(
      fc.property(fc.array(outcome, { maxLength: 8 }), (outcomes) => {
        const body = toBinary(AuthenticateBatchResponseSchema, authenticateBatchResponse(outcomes));
        expect(decodeAuthenticateBatchResponse(Buffer.from(body))).toEqual(responseReference(body));
      }),
      { seed: SEED, numRuns: 400 },
    );
  });

  it("of a result's oneof the last case wins; a repeated identity merges; malformed answers throw", () => {
    const field = (n: number, bytes: Uint8Array) => Buffer.concat([Buffer.from([(n << 3) | 2, bytes.length]), bytes]);
    const identity = (init: Parameters<typeof create<typeof IdentitySchema>>[1]) =>
      toBinary(IdentitySchema, create(IdentitySchema, init));
    const failure = Buffer.from([0x08, 16, 0x12, 2, 0x6e, 0x6f]); // code 16, message "no"
    const results = [
      // failure, then identity: the identity
      Buffer.concat([field(2, failure), field(1, identity({ userId: "u1", tier: "free" }))]),
      // identity, then failure: the failure
      Buffer.concat([field(1, identity({ userId: "u2" })), field(2, failure)]),
      // identity twice: merged
      Buffer.concat([field(1, identity({ userId: "u3", roles: ["a"] })), field(1, identity({ tier: "pro", roles: ["b"] }))]),
      // neither
      Buffer.alloc(0),
    ];
    const body = Buffer.concat(results.map((r) => field(1, r)));
    expect(fromBinary(AuthenticateResultSchema, results[0] as Buffer).result.case).toBe("identity");
    expect(decodeAuthenticateBatchResponse(body)).toEqual(responseReference(body));
    expect(decodeAuthenticateBatchResponse(body)[2]).toMatchObject({
      identity: { userId: "u3", tier: "pro", roles: ["a", "b"] },
    });
    for (const bad of [Buffer.from([0x0a, 5, 0x0a]), Buffer.from([0x0a]), Buffer.from([0x0a, 2, 0x12, 4])]) {
      expect(() => fromBinary(AuthenticateBatchResponseSchema, bad)).toThrow();
      expect(() => decodeAuthenticateBatchResponse(bad)).toThrow();
    }
  });
});
