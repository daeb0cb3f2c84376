/** Splits a byte stream into 5-byte-prefixed envelopes (gRPC, gRPC-Web, Connect streaming). */
export interface EnvelopeReader {
  /** Feeds a chunk; calls `onMessage` for every complete envelope. False when one declares more than the limit. */
  push(chunk: Buffer): boolean;
  /** Bytes of an incomplete envelope held back. */
  readonly buffered: number;
  /** The declared size of the envelope that broke the limit. */
  readonly declared: number;
}

/**
 * Envelopes are assembled in linear time: chunks are kept as they arrive and each message is
 * copied out once, when it is complete (or not at all when it lies in one chunk). A message
 * declaring more than `maxBytes` is refused from its prefix, before anything of it is held.
 */
export function createEnvelopeReader(maxBytes: number, onMessage: (flags: number, data: Buffer) => void): EnvelopeReader {
  /** Chunks not yet consumed; the first one from `offset`. */
  const chunks: Buffer[] = [];
  let offset = 0;
  let buffered = 0;
  let declared = 0;
  /** The byte at `index` of what is buffered. */
  const byteAt = (index: number): number => {
    let i = index + offset;
    for (const chunk of chunks) {
      if (i < chunk.length) return chunk[i] as number;
      i -= chunk.length;
    }
    return 0;
  };
  /** Consumes `count` bytes of the first chunk. */
  const advance = (first: Buffer, count: number) => {
    offset += count;
    buffered -= count;
    if (offset === first.length) {
      chunks.shift();
      offset = 0;
    }
  };
  /** Removes `n` bytes from the front: one subarray when they lie in the first chunk, else one copy. */
  const take = (n: number): Buffer => {
    const first = chunks[0] as Buffer;
    if (first.length - offset >= n) {
      const out = first.subarray(offset, offset + n);
      advance(first, n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = chunks[0] as Buffer;
      const count = Math.min(chunk.length - offset, n - filled);
      chunk.copy(out, filled, offset, offset + count);
      filled += count;
      advance(chunk, count);
    }
    return out;
  };
  return {
    push(chunk) {
      if (chunk.length > 0) {
        chunks.push(chunk);
        buffered += chunk.length;
      }
      while (buffered >= 5) {
        const length = ((byteAt(1) << 24) | (byteAt(2) << 16) | (byteAt(3) << 8) | byteAt(4)) >>> 0;
        if (length > maxBytes) {
          declared = length;
          chunks.length = 0;
          offset = 0;
          buffered = 0;
          return false;
        }
        if (buffered < 5 + length) break;
        const flags = byteAt(0);
        const message = take(5 + length).subarray(5);
        onMessage(flags, message);
      }
      return true;
    },
    get buffered() {
      return buffered;
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
