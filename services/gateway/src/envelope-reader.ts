/** Splits a byte stream into 5-byte-prefixed envelopes (gRPC, gRPC-Web, Connect streaming). */
export interface EnvelopeReader {
  /** Feeds a chunk; calls `onMessage` for every complete envelope. False when one declares more than the limit. */
  push(chunk: Buffer): boolean;
  /** Bytes of an incomplete envelope held back. */
  readonly buffered: number;
  /** The declared size of the envelope that broke the limit. */
  readonly declared: number;
}

export function createEnvelopeReader(maxBytes: number, onMessage: (flags: number, data: Buffer) => void): EnvelopeReader {
  let pending: Buffer = Buffer.alloc(0);
  let declared = 0;
  return {
    push(chunk) {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let offset = 0;
      while (pending.length - offset >= 5) {
        const length = pending.readUInt32BE(offset + 1);
        if (length > maxBytes) {
          declared = length;
          pending = Buffer.alloc(0);
          return false;
        }
        if (pending.length - offset < 5 + length) break;
        const flags = pending[offset] as number;
        onMessage(flags, pending.subarray(offset + 5, offset + 5 + length));
        offset += 5 + length;
      }
      pending = offset === 0 ? pending : pending.subarray(offset);
      return true;
    },
    get buffered() {
      return pending.length;
    },
    get declared() {
      return declared;
    },
  };
}

/** Decodes a base64 stream (gRPC-Web text) whose chunks split groups anywhere and may pad in between. */
export function createBase64Decoder(): (chunk: Buffer) => Buffer {
  let carry = "";
  return (chunk) => {
    const text = carry + chunk.toString("latin1").replace(/\s+/g, "");
    const usable = text.length - (text.length % 4);
    carry = text.slice(usable);
    const body = text.slice(0, usable);
    if (!body.includes("=")) return Buffer.from(body, "base64");
    const parts: Buffer[] = [];
    for (let i = 0; i < body.length; i += 4) parts.push(Buffer.from(body.slice(i, i + 4), "base64"));
    return Buffer.concat(parts);
  };
}

/** Encodes a byte stream as one continuous base64 text, carrying partial 3-byte groups to the next chunk. */
export function createBase64Encoder(): { push(chunk: Buffer): Buffer; end(): Buffer } {
  let carry: Buffer = Buffer.alloc(0);
  return {
    push(chunk) {
      const all = carry.length === 0 ? chunk : Buffer.concat([carry, chunk]);
      const usable = all.length - (all.length % 3);
      carry = Buffer.from(all.subarray(usable));
      return Buffer.from(all.subarray(0, usable).toString("base64"), "latin1");
    },
    end() {
      const rest = carry.length === 0 ? Buffer.alloc(0) : Buffer.from(carry.toString("base64"), "latin1");
      carry = Buffer.alloc(0);
      return rest;
    },
  };
}
