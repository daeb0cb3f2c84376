import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { AuthenticateRequestSchema, AuthenticateResponseSchema } from "@portico/gen/portico/auth/v1/auth_pb.js";
import type { AccessClaims } from "./access-tokens.js";

// Authenticate's messages by hand (portico.auth.v1, auth.proto) for the fast path, which answers
// every token the gateway's cache does not hold: protobuf-es's reflective decoder and encoder were
// 7 % of auth's busy time under W6. `AuthenticateRequest { string access_token = 1 }`;
// `AuthenticateResponse { Identity identity = 1 }` with `string user_id = 1; string tier = 2;
// repeated string roles = 3; string session_id = 4; google.protobuf.Timestamp expires_at = 5`
// (`int64 seconds = 1; int32 nanos = 2`). Only the shapes the gateway sends and the claims a
// token holds take the hand-written path; anything else goes through protobuf-es, so the bytes
// and the answers are protobuf-es's in every case (compared in the tests).

/** Bytes of a gRPC envelope's prefix: the compressed flag and the message length. */
const ENVELOPE_PREFIX = 5;

/**
 * The access token of an AuthenticateRequest. The gateway's shape (the one field, once, ASCII) is
 * read directly; any other message is decoded by protobuf-es (which throws on a malformed one).
 */
export function decodeAuthenticateRequest(body: Uint8Array): string {
  if (body.length > 1 && body[0] === 0x0a) {
    let length = 0;
    let at = 1;
    for (let shift = 0; at < body.length && shift < 28; shift += 7) {
      const byte = body[at++] as number;
      length |= (byte & 0x7f) << shift;
      if (byte < 0x80) {
        if (at + length !== body.length) break;
        let ascii = true;
        for (let i = at; i < body.length; i++) {
          if ((body[i] as number) > 0x7f) {
            ascii = false;
            break;
          }
        }
        if (ascii) return Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("latin1", at);
        break;
      }
    }
  }
  return fromBinary(AuthenticateRequestSchema, body).accessToken;
}

function varintSize(n: number): number {
  let size = 1;
  for (; n >= 0x80; n = Math.floor(n / 128)) size++;
  return size;
}

function writeVarint(out: Buffer, at: number, n: number): number {
  while (n >= 0x80) {
    out[at++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  out[at++] = n;
  return at;
}

/** A string field's bytes (tag, length, text); proto3 leaves an empty one out. */
function stringSize(bytes: number): number {
  return bytes === 0 ? 0 : 1 + varintSize(bytes) + bytes;
}

function writeString(out: Buffer, at: number, tag: number, text: string, bytes: number): number {
  if (bytes === 0) return at;
  out[at++] = tag;
  at = writeVarint(out, at, bytes);
  return at + out.write(text, at, "utf8");
}

/**
 * The AuthenticateResponse of `claims` in the protobuf binary format, as protobuf-es writes it;
 * with `envelope`, behind the 5-byte prefix of an uncompressed gRPC message (one buffer, no copy).
 */
export function encodeAuthenticateResponse(claims: AccessClaims, envelope: boolean): Buffer {
  const { userId, tier, roles, sessionId, expiresAtMs } = claims;
  // A negative or fractional expiry (never issued) is left to protobuf-es.
  if (!(Number.isSafeInteger(expiresAtMs) && expiresAtMs >= 0)) return viaProtobufEs(claims, envelope);
  const seconds = Math.floor(expiresAtMs / 1000);
  const nanos = (expiresAtMs % 1000) * 1_000_000;
  const timestampSize = (seconds === 0 ? 0 : 1 + varintSize(seconds)) + (nanos === 0 ? 0 : 1 + varintSize(nanos));
  const userIdBytes = Buffer.byteLength(userId, "utf8");
  const tierBytes = Buffer.byteLength(tier, "utf8");
  const sessionIdBytes = Buffer.byteLength(sessionId, "utf8");
  let identitySize = stringSize(userIdBytes) + stringSize(tierBytes) + stringSize(sessionIdBytes);
  const roleBytes: number[] = [];
  for (const role of roles) {
    const bytes = Buffer.byteLength(role, "utf8");
    roleBytes.push(bytes);
    // A repeated string keeps its empty elements.
    identitySize += 1 + varintSize(bytes) + bytes;
  }
  identitySize += 1 + varintSize(timestampSize) + timestampSize;
  const messageSize = 1 + varintSize(identitySize) + identitySize;
  const prefix = envelope ? ENVELOPE_PREFIX : 0;
  const out = Buffer.allocUnsafe(prefix + messageSize);
  if (envelope) {
    out[0] = 0;
    out.writeUInt32BE(messageSize, 1);
  }
  let at = prefix;
  out[at++] = 0x0a; // identity = 1
  at = writeVarint(out, at, identitySize);
  at = writeString(out, at, 0x0a, userId, userIdBytes); // user_id = 1
  at = writeString(out, at, 0x12, tier, tierBytes); // tier = 2
  for (let i = 0; i < roles.length; i++) {
    const bytes = roleBytes[i] as number;
    out[at++] = 0x1a; // roles = 3
    at = writeVarint(out, at, bytes);
    at += out.write(roles[i] as string, at, "utf8");
  }
  at = writeString(out, at, 0x22, sessionId, sessionIdBytes); // session_id = 4
  out[at++] = 0x2a; // expires_at = 5
  at = writeVarint(out, at, timestampSize);
  if (seconds !== 0) {
    out[at++] = 0x08; // seconds = 1
    at = writeVarint(out, at, seconds);
  }
  if (nanos !== 0) {
    out[at++] = 0x10; // nanos = 2
    at = writeVarint(out, at, nanos);
  }
  return out;
}

/** The AuthenticateResponse message of `claims` (the RPC handler answers it; the fast path encodes the same by hand). */
export function authenticateResponse(claims: AccessClaims) {
  return create(AuthenticateResponseSchema, {
    identity: {
      userId: claims.userId,
      tier: claims.tier,
      roles: claims.roles,
      sessionId: claims.sessionId,
      expiresAt: timestampFromMs(claims.expiresAtMs),
    },
  });
}

function viaProtobufEs(claims: AccessClaims, envelope: boolean): Buffer {
  const bytes = toBinary(AuthenticateResponseSchema, authenticateResponse(claims));
  if (!envelope) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = Buffer.allocUnsafe(ENVELOPE_PREFIX + bytes.length);
  out[0] = 0;
  out.writeUInt32BE(bytes.length, 1);
  out.set(bytes, ENVELOPE_PREFIX);
  return out;
}
