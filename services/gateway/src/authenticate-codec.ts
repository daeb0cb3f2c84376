import type { VerifiedToken } from "./auth-cache.js";

// Authenticate's messages by hand (portico.auth.v1, auth.proto): the gateway sends one for every
// token its cache does not hold, and protobuf-es's reflective encoder and decoder made a dozen
// short-lived objects per call. The request is `string access_token = 1`; the answer is
// `Identity identity = 1` with `string user_id = 1; string tier = 2; repeated string roles = 3;
// string session_id = 4; google.protobuf.Timestamp expires_at = 5` (`int64 seconds = 1; int32 nanos = 2`).
// Decoding follows the wire format's rules as protobuf-es does: unknown fields are skipped, a
// repeated embedded message merges, the last scalar wins. Compared with protobuf-es in the tests.

/** AuthenticateRequest { access_token } in the protobuf binary format (proto3: an empty one is no bytes). */
export function encodeAuthenticateRequest(token: string): Buffer {
  if (token === "") return Buffer.alloc(0);
  const length = Buffer.byteLength(token, "utf8");
  let lengthBytes = 1;
  for (let n = length; n >= 0x80; n = Math.floor(n / 128)) lengthBytes++;
  const out = Buffer.allocUnsafe(1 + lengthBytes + length);
  out[0] = 0x0a;
  let at = 1;
  let n = length;
  while (n >= 0x80) {
    out[at++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  out[at++] = n;
  out.write(token, at, "utf8");
  return out;
}

class Reader {
  at: number;
  constructor(
    readonly buf: Buffer,
    start: number,
    readonly end: number,
  ) {
    this.at = start;
  }
  /** A varint as two 32-bit halves: low in the return value, high in `this.high`. */
  high = 0;
  varint(): number {
    let low = 0;
    let high = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      if (this.at >= this.end) throw new Error("truncated varint");
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
  /** The end of a length-delimited field that starts here. */
  delimited(): number {
    const length = this.varint();
    if (this.high !== 0 || length > this.end - this.at) throw new Error("length beyond the message");
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
    if (this.at > this.end) throw new Error("field beyond the message");
  }
}

interface Fields {
  userId: string;
  tier: string;
  roles: string[];
  sessionId: string;
  seconds: number;
  nanos: number;
  hasExpiry: boolean;
  hasIdentity: boolean;
}

function readTimestamp(r: Reader, end: number, f: Fields): void {
  f.hasExpiry = true;
  while (r.at < end) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wireType = tag & 7;
    if (field === 1 && wireType === 0) {
      const low = r.varint();
      // int64: the high half is signed.
      f.seconds = (r.high | 0) * 0x1_0000_0000 + low;
    } else if (field === 2 && wireType === 0) f.nanos = r.varint() | 0;
    else r.skip(wireType);
  }
  if (r.at !== end) throw new Error("Timestamp beyond its length");
}

function readIdentity(r: Reader, end: number, f: Fields): void {
  f.hasIdentity = true;
  while (r.at < end) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wireType = tag & 7;
    if (wireType === 2 && field >= 1 && field <= 5) {
      if (field === 1) f.userId = r.string();
      else if (field === 2) f.tier = r.string();
      else if (field === 3) f.roles.push(r.string());
      else if (field === 4) f.sessionId = r.string();
      else {
        const stop = r.delimited();
        readTimestamp(r, stop, f);
      }
    } else r.skip(wireType);
  }
  if (r.at !== end) throw new Error("Identity beyond its length");
}

/**
 * AuthenticateResponse in the protobuf binary format, as the gateway keeps it: undefined when it
 * holds no identity or an empty user id; throws on a malformed message. A token with no expiry
 * expires never (the cache's TTL still bounds it).
 */
export function decodeAuthenticateResponse(body: Buffer): VerifiedToken | undefined {
  const f: Fields = {
    userId: "",
    tier: "",
    roles: [],
    sessionId: "",
    seconds: 0,
    nanos: 0,
    hasExpiry: false,
    hasIdentity: false,
  };
  const r = new Reader(body, 0, body.length);
  while (r.at < body.length) {
    const tag = r.varint();
    if (tag >>> 3 === 1 && (tag & 7) === 2) {
      const end = r.delimited();
      readIdentity(r, end, f);
    } else r.skip(tag & 7);
  }
  if (!f.hasIdentity || f.userId === "") return undefined;
  return {
    identity: { userId: f.userId, tier: f.tier, roles: f.roles, sessionId: f.sessionId },
    expiresAtMs: f.hasExpiry ? f.seconds * 1000 + Math.round(f.nanos / 1_000_000) : Number.POSITIVE_INFINITY,
  };
}
