import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  AuthenticateBatchRequestSchema,
  AuthenticateBatchResponseSchema,
  AuthenticateRequestSchema,
  AuthenticateResponseSchema,
} from "@portico/gen/portico/auth/v1/auth_pb.js";

// AuthService.Authenticate's messages by hand (portico.auth.v1, auth.proto), both sides of the call
// the gateway makes for every token its cache does not hold: protobuf-es's reflective encoder and
// decoder made a dozen short-lived objects per call in the gateway and were 7 % of auth's busy time
// under W6. `AuthenticateRequest { string access_token = 1 }`; `AuthenticateResponse { Identity
// identity = 1 }` with `string user_id = 1; string tier = 2; repeated string roles = 3; string
// session_id = 4; google.protobuf.Timestamp expires_at = 5` (`int64 seconds = 1; int32 nanos = 2`).
// Decoding follows the wire format's rules as protobuf-es does (unknown fields skipped, a repeated
// embedded message merged, the last scalar wins); what the hand-written paths do not cover goes
// through protobuf-es. Compared with protobuf-es byte for byte in seeded properties.
// AuthenticateBatch's messages are these repeated: `AuthenticateBatchRequest { repeated string
// access_tokens = 1 }`, `AuthenticateBatchResponse { repeated AuthenticateResult results = 1 }`,
// whose `Identity identity = 1` makes a valid token's result the bytes of its AuthenticateResponse,
// and `AuthenticateFailure failure = 2 { int32 code = 1; string message = 2 }`.

/** The user a token stands for, as Authenticate answers it. */
export interface AuthenticatedUser {
  userId: string;
  tier: string;
  roles: string[];
  sessionId: string;
  /** When the token expires (ms since epoch). */
  expiresAtMs: number;
}

/** An AuthenticateResponse as the gateway keeps it. */
export interface AuthenticateAnswer {
  identity: Omit<AuthenticatedUser, "expiresAtMs">;
  /** When the token expires (ms since epoch); +Infinity for an answer without an expiry. */
  expiresAtMs: number;
}

/** Why a token was refused, as AuthenticateBatch answers it: a Connect code number and a message. */
export interface AuthenticateFailureInfo {
  code: number;
  message: string;
}

/** The most tokens, and the most bytes of tokens, in one AuthenticateBatch call. */
export const maxAuthenticateBatch = { tokens: 64, bytes: 64 * 1024 } as const;

/** Bytes of a gRPC envelope's prefix: the compressed flag and the message length. */
const ENVELOPE_PREFIX = 5;

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

/** A buffer for a message of `size` bytes, behind an uncompressed gRPC envelope's prefix when asked; the message starts at the returned offset. */
function messageBuffer(size: number, envelope: boolean): [Buffer, number] {
  if (!envelope) return [Buffer.allocUnsafe(size), 0];
  const out = Buffer.allocUnsafe(ENVELOPE_PREFIX + size);
  out[0] = 0;
  out.writeUInt32BE(size, 1);
  return [out, ENVELOPE_PREFIX];
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

/** AuthenticateRequest { access_token } in the protobuf binary format (proto3: an empty one is no bytes). */
export function encodeAuthenticateRequest(token: string): Buffer {
  const bytes = Buffer.byteLength(token, "utf8");
  const out = Buffer.allocUnsafe(stringSize(bytes));
  writeString(out, 0, 0x0a, token, bytes);
  return out;
}

/**
 * The strings of a message that holds field 1 only, every occurrence ASCII (the gateway's requests,
 * one token or a batch of them), read directly; undefined for any other message.
 */
function asciiStrings(body: Uint8Array): string[] | undefined {
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const strings: string[] = [];
  let at = 0;
  while (at < buf.length) {
    if (buf[at++] !== 0x0a) return undefined;
    let length = -1;
    for (let shift = 0, n = 0; at < buf.length && shift < 28; shift += 7) {
      const byte = buf[at++] as number;
      n |= (byte & 0x7f) << shift;
      if (byte < 0x80) {
        length = n;
        break;
      }
    }
    if (length < 0 || length > buf.length - at) return undefined;
    for (let i = at; i < at + length; i++) {
      if ((buf[i] as number) > 0x7f) return undefined;
    }
    strings.push(buf.toString("latin1", at, at + length));
    at += length;
  }
  return strings;
}

/**
 * The access token of an AuthenticateRequest. The gateway's shape (the one field, once, ASCII) is
 * read directly; any other message is decoded by protobuf-es (which throws on a malformed one).
 */
export function decodeAuthenticateRequest(body: Uint8Array): string {
  const fast = asciiStrings(body);
  return fast?.length === 1 ? (fast[0] as string) : fromBinary(AuthenticateRequestSchema, body).accessToken;
}

/** AuthenticateBatchRequest { access_tokens } in the protobuf binary format (a repeated string keeps its empty elements). */
export function encodeAuthenticateBatchRequest(tokens: readonly string[]): Buffer {
  let size = 0;
  const lengths: number[] = [];
  for (const token of tokens) {
    const bytes = Buffer.byteLength(token, "utf8");
    lengths.push(bytes);
    size += 1 + varintSize(bytes) + bytes;
  }
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (let i = 0; i < tokens.length; i++) {
    const bytes = lengths[i] as number;
    out[at++] = 0x0a;
    at = writeVarint(out, at, bytes);
    at += out.write(tokens[i] as string, at, "utf8");
  }
  return out;
}

/**
 * The access tokens of an AuthenticateBatchRequest. The gateway's shape (field 1 only, ASCII) is
 * read directly; any other message is decoded by protobuf-es (which throws on a malformed one).
 */
export function decodeAuthenticateBatchRequest(body: Uint8Array): string[] {
  return asciiStrings(body) ?? fromBinary(AuthenticateBatchRequestSchema, body).accessTokens;
}

/** The AuthenticateResponse message of `user` (auth's RPC handler answers it; the fast path encodes the same by hand). */
export function authenticateResponse(user: AuthenticatedUser) {
  return create(AuthenticateResponseSchema, { identity: identityInit(user) });
}

function identityInit(user: AuthenticatedUser) {
  return {
    userId: user.userId,
    tier: user.tier,
    roles: user.roles,
    sessionId: user.sessionId,
    expiresAt: timestampFromMs(user.expiresAtMs),
  };
}

/**
 * The AuthenticateResponse of `user` in the protobuf binary format, as protobuf-es writes it;
 * with `envelope`, behind the 5-byte prefix of an uncompressed gRPC message (one buffer, no copy).
 */
export function encodeAuthenticateResponse(user: AuthenticatedUser, envelope: boolean): Buffer {
  const { userId, tier, roles, sessionId, expiresAtMs } = user;
  // A negative or fractional expiry (never issued) is left to protobuf-es.
  if (!(Number.isSafeInteger(expiresAtMs) && expiresAtMs >= 0)) return viaProtobufEs(user, envelope);
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
  const [out, start] = messageBuffer(messageSize, envelope);
  let at = start;
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

function viaProtobufEs(user: AuthenticatedUser, envelope: boolean): Buffer {
  return enveloped(toBinary(AuthenticateResponseSchema, authenticateResponse(user)), envelope);
}

function enveloped(bytes: Uint8Array, envelope: boolean): Buffer {
  if (!envelope) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const [out, at] = messageBuffer(bytes.length, true);
  out.set(bytes, at);
  return out;
}

/** One token's outcome as AuthenticateBatch answers it: its user, or why it was refused. */
export type AuthenticateOutcome = AuthenticatedUser | AuthenticateFailureInfo;

function isFailure(outcome: AuthenticateOutcome): outcome is AuthenticateFailureInfo {
  return "code" in outcome;
}

/** The AuthenticateBatchResponse message of `outcomes` (auth's RPC handler answers it; the fast path encodes the same by hand). */
export function authenticateBatchResponse(outcomes: readonly AuthenticateOutcome[]) {
  return create(AuthenticateBatchResponseSchema, {
    results: outcomes.map((outcome) =>
      isFailure(outcome)
        ? { result: { case: "failure" as const, value: { code: outcome.code, message: outcome.message } } }
        : { result: { case: "identity" as const, value: identityInit(outcome) } },
    ),
  });
}

/** An AuthenticateResult with a failure: `failure = 2 { code = 1; message = 2 }`. */
function encodeFailure(failure: AuthenticateFailureInfo): Buffer | undefined {
  const { code, message } = failure;
  // A code protobuf writes as ten bytes (negative) or not at all is left to protobuf-es.
  if (!(Number.isInteger(code) && code > 0 && code <= 0x7fff_ffff)) return undefined;
  const messageBytes = Buffer.byteLength(message, "utf8");
  const failureSize = 1 + varintSize(code) + stringSize(messageBytes);
  const out = Buffer.allocUnsafe(1 + varintSize(failureSize) + failureSize);
  out[0] = 0x12;
  let at = writeVarint(out, 1, failureSize);
  out[at++] = 0x08;
  at = writeVarint(out, at, code);
  writeString(out, at, 0x12, message, messageBytes);
  return out;
}

/**
 * The AuthenticateBatchResponse of `outcomes` in the protobuf binary format, as protobuf-es writes
 * it; with `envelope`, behind the 5-byte prefix of an uncompressed gRPC message.
 */
export function encodeAuthenticateBatchResponse(outcomes: readonly AuthenticateOutcome[], envelope: boolean): Buffer {
  const results: Buffer[] = [];
  let size = 0;
  for (const outcome of outcomes) {
    const result = isFailure(outcome) ? encodeFailure(outcome) : encodeAuthenticateResponse(outcome, false);
    if (result === undefined) return batchViaProtobufEs(outcomes, envelope);
    results.push(result);
    size += 1 + varintSize(result.length) + result.length;
  }
  const [out, start] = messageBuffer(size, envelope);
  let at = start;
  for (const result of results) {
    out[at++] = 0x0a; // results = 1
    at = writeVarint(out, at, result.length);
    at += result.copy(out, at);
  }
  return out;
}

function batchViaProtobufEs(outcomes: readonly AuthenticateOutcome[], envelope: boolean): Buffer {
  return enveloped(toBinary(AuthenticateBatchResponseSchema, authenticateBatchResponse(outcomes)), envelope);
}

/** Reads the fields of one message after another; nested messages are read with their end as the bound. */
class FieldReader {
  at = 0;
  /** The high 32 bits of the last varint read. */
  high = 0;
  constructor(readonly buf: Buffer) {}

  /** The next field's tag (field number << 3 | wire type), or -1 once `end` is reached; throws if a field ran past it. */
  next(end: number): number {
    if (this.at < end) return this.varint(end);
    if (this.at !== end) throw new Error("field beyond its message");
    return -1;
  }

  /** A varint: the low 32 bits returned, the high ones in `high`. */
  varint(end = this.buf.length): number {
    let low = 0;
    let high = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      if (this.at >= end) throw new Error("truncated varint");
      const b = this.buf[this.at++] as number;
      if (shift < 28) low |= (b & 0x7f) << shift;
      else if (shift === 28) {
        low |= (b & 0x0f) << 28;
        high |= (b & 0x7f) >> 4;
      } else high |= (b & 0x7f) << (shift - 32);
      shift += 7;
      if (b < 0x80) {
        this.high = high >>> 0;
        return low >>> 0;
      }
    }
    throw new Error("varint longer than 10 bytes");
  }

  /** The end of the length-delimited field that starts here. */
  delimited(): number {
    const length = this.varint();
    if (this.high !== 0 || length > this.buf.length - this.at) throw new Error("length beyond the message");
    return this.at + length;
  }

  string(): string {
    const end = this.delimited();
    const text = this.buf.toString("utf8", this.at, end);
    this.at = end;
    return text;
  }

  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.at += 8;
    else if (wireType === 2) this.at = this.delimited();
    else if (wireType === 5) this.at += 4;
    else throw new Error(`unsupported wire type ${wireType}`);
  }
}

/** The fields of an Identity, merged over every occurrence of the message (as protobuf merges a repeated embedded message). */
class IdentityFields {
  readonly identity = { userId: "", tier: "", roles: [] as string[], sessionId: "" };
  private hasExpiry = false;
  private seconds = 0;
  private nanos = 0;

  read(r: FieldReader, identityEnd: number): void {
    const identity = this.identity;
    for (let inner = r.next(identityEnd); inner !== -1; inner = r.next(identityEnd)) {
      if (inner === 0x0a) identity.userId = r.string();
      else if (inner === 0x12) identity.tier = r.string();
      else if (inner === 0x1a) identity.roles.push(r.string());
      else if (inner === 0x22) identity.sessionId = r.string();
      else if (inner === 0x2a) {
        this.hasExpiry = true;
        const timestampEnd = r.delimited();
        for (let t = r.next(timestampEnd); t !== -1; t = r.next(timestampEnd)) {
          if (t === 0x08) {
            const low = r.varint();
            // int64: the high half is signed.
            this.seconds = (r.high | 0) * 0x1_0000_0000 + low;
          } else if (t === 0x10) this.nanos = r.varint() | 0;
          else r.skip(t & 7);
        }
      } else r.skip(inner & 7);
    }
  }

  /** Undefined for an empty user id. A token with no expiry expires never (the cache's TTL still bounds it). */
  answer(): AuthenticateAnswer | undefined {
    if (this.identity.userId === "") return undefined;
    return {
      identity: this.identity,
      expiresAtMs: this.hasExpiry ? this.seconds * 1000 + Math.round(this.nanos / 1_000_000) : Number.POSITIVE_INFINITY,
    };
  }
}

/**
 * AuthenticateResponse in the protobuf binary format, as the gateway keeps it: undefined when it
 * holds no identity or an empty user id; throws on a malformed message.
 */
export function decodeAuthenticateResponse(body: Buffer): AuthenticateAnswer | undefined {
  let fields: IdentityFields | undefined;
  const r = new FieldReader(body);
  for (let tag = r.next(body.length); tag !== -1; tag = r.next(body.length)) {
    if (tag !== 0x0a) {
      r.skip(tag & 7);
      continue;
    }
    fields ??= new IdentityFields();
    fields.read(r, r.delimited());
  }
  return fields?.answer();
}

/**
 * AuthenticateBatchResponse in the protobuf binary format, one entry per result: a token's answer
 * (undefined for a result with no identity, or an empty user id) or its failure; throws on a
 * malformed message. Of a result's oneof the last case on the wire wins, as in protobuf.
 */
export function decodeAuthenticateBatchResponse(body: Buffer): (AuthenticateAnswer | AuthenticateFailureInfo | undefined)[] {
  const results: (AuthenticateAnswer | AuthenticateFailureInfo | undefined)[] = [];
  const r = new FieldReader(body);
  for (let tag = r.next(body.length); tag !== -1; tag = r.next(body.length)) {
    if (tag !== 0x0a) {
      r.skip(tag & 7);
      continue;
    }
    const resultEnd = r.delimited();
    let fields: IdentityFields | undefined;
    let failure: AuthenticateFailureInfo | undefined;
    for (let inner = r.next(resultEnd); inner !== -1; inner = r.next(resultEnd)) {
      if (inner === 0x0a) {
        failure = undefined;
        fields ??= new IdentityFields();
        fields.read(r, r.delimited());
      } else if (inner === 0x12) {
        fields = undefined;
        failure ??= { code: 0, message: "" };
        const failureEnd = r.delimited();
        for (let f = r.next(failureEnd); f !== -1; f = r.next(failureEnd)) {
          if (f === 0x08) failure.code = r.varint() | 0;
          else if (f === 0x12) failure.message = r.string();
          else r.skip(f & 7);
        }
      } else r.skip(inner & 7);
    }
    results.push(failure ?? fields?.answer());
  }
  return results;
}
