// The gateway's side of Authenticate: it writes requests and reads answers.
import { create, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { AuthenticateRequestSchema, AuthenticateResponseSchema, IdentitySchema } from "@portico/gen/portico/auth/v1/auth_pb.js";
import { describe, expect, it } from "vitest";
import { decodeAuthenticateResponse, encodeAuthenticateRequest } from "../src/authenticate-codec.js";

// A seeded generator, so a failure names its case.
function random(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x1_0000_0000;
  };
}

const ALPHABET = ["a", "Z", "0", "-", ".", "é", "ß", "日", "😀", " ", ","];

function text(next: () => number, max: number): string {
  let out = "";
  const n = Math.floor(next() * max);
  for (let i = 0; i < n; i++) out += ALPHABET[Math.floor(next() * ALPHABET.length)];
  return out;
}

// What the gateway made of protobuf-es's decoding before the hand-written one.
function reference(body: Uint8Array) {
  const identity = fromBinary(AuthenticateResponseSchema, body).identity;
  if (!identity || identity.userId === "") return undefined;
  return {
    identity: { userId: identity.userId, tier: identity.tier, roles: [...identity.roles], sessionId: identity.sessionId },
    expiresAtMs: identity.expiresAt ? timestampMs(identity.expiresAt) : Number.POSITIVE_INFINITY,
  };
}

describe("the hand-written Authenticate codec", () => {
  it("encodes requests as protobuf-es does, for tokens of every length", () => {
    const next = random(7);
    for (const length of [0, 1, 127, 128, 300, 16_383, 16_384, 70_000]) {
      const token = "x".repeat(length);
      expect(encodeAuthenticateRequest(token)).toEqual(
        Buffer.from(toBinary(AuthenticateRequestSchema, create(AuthenticateRequestSchema, { accessToken: token }))),
      );
    }
    for (let i = 0; i < 200; i++) {
      const token = text(next, 400);
      const bytes = encodeAuthenticateRequest(token);
      expect(bytes).toEqual(
        Buffer.from(toBinary(AuthenticateRequestSchema, create(AuthenticateRequestSchema, { accessToken: token }))),
      );
      expect(fromBinary(AuthenticateRequestSchema, bytes).accessToken).toBe(token);
    }
  });

  it("decodes answers as protobuf-es does, in a seeded property", () => {
    const next = random(42);
    for (let i = 0; i < 500; i++) {
      const identity: MessageInitShape<typeof IdentitySchema> = {
        userId: next() < 0.1 ? "" : text(next, 40),
        tier: text(next, 10),
        roles: Array.from({ length: Math.floor(next() * 4) }, () => text(next, 8)),
        sessionId: text(next, 40),
      };
      if (next() < 0.8) {
        const seconds = BigInt(Math.floor((next() - 0.1) * 4_000_000_000));
        identity.expiresAt = { seconds, nanos: Math.floor(next() * 999_999_999) };
      }
      const response = create(AuthenticateResponseSchema, next() < 0.05 ? {} : { identity: create(IdentitySchema, identity) });
      const body = toBinary(AuthenticateResponseSchema, response);
      expect(decodeAuthenticateResponse(Buffer.from(body)), `case ${i}`).toEqual(reference(body));
    }
  });

  it("skips unknown fields, merges a repeated identity and refuses malformed bytes", () => {
    const identity = toBinary(
      IdentitySchema,
      create(IdentitySchema, { userId: "u1", tier: "free", roles: ["a"], sessionId: "s1" }),
    );
    const more = toBinary(IdentitySchema, create(IdentitySchema, { tier: "pro", roles: ["b"] }));
    const field = (n: number, bytes: Uint8Array) => Buffer.concat([Buffer.from([(n << 3) | 2, bytes.length]), bytes]);
    // Unknown fields of every wire type, before and after, and the identity sent twice.
    const body = Buffer.concat([
      Buffer.from([(9 << 3) | 0, 0x96, 0x01, (10 << 3) | 1, 1, 2, 3, 4, 5, 6, 7, 8, (11 << 3) | 5, 1, 2, 3, 4]),
      field(1, identity),
      field(12, Buffer.from("junk")),
      field(1, more),
    ]);
    expect(decodeAuthenticateResponse(body)).toEqual(reference(body));
    expect(decodeAuthenticateResponse(body)?.identity).toEqual({ userId: "u1", tier: "pro", roles: ["a", "b"], sessionId: "s1" });
    for (const bad of [Buffer.from([0x0a, 5, 0x0a]), Buffer.from([0x0a]), Buffer.from([0x0b]), Buffer.from([0x80])]) {
      expect(() => fromBinary(AuthenticateResponseSchema, bad)).toThrow();
      expect(() => decodeAuthenticateResponse(bad)).toThrow();
    }
  });
});
