// Test helper (not a test): arbitrary ways a byte stream arrives in chunks, for property-based tests.
import fc from "fast-check";

/** Cut points (fractions of the length) that split a buffer into chunks; empty chunks included. */
export const cuts: fc.Arbitrary<number[]> = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12 });

/** `bytes` split at the given fractions of its length, in order; the chunks concatenate to `bytes`. */
export function split(bytes: Uint8Array, at: readonly number[]): Buffer[] {
  const buffer = Buffer.from(bytes);
  const points = at.map((fraction) => Math.floor(fraction * buffer.length)).sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const point of points) {
    chunks.push(buffer.subarray(start, point));
    start = point;
  }
  chunks.push(buffer.subarray(start));
  return chunks;
}

/** An enveloped message (5-byte prefix: flags, big-endian length). */
export const envelopedMessage = fc.record({ flags: fc.nat(255), data: fc.uint8Array({ maxLength: 300 }) });

export function envelopeBytes(messages: ReadonlyArray<{ flags: number; data: Uint8Array }>): Buffer {
  return Buffer.concat(
    messages.flatMap(({ flags, data }) => {
      const prefix = Buffer.alloc(5);
      prefix[0] = flags;
      prefix.writeUInt32BE(data.length, 1);
      return [prefix, Buffer.from(data)];
    }),
  );
}

/** Bytes that look like an envelope stream or not: random, or valid envelopes then a few bytes of noise. */
export const envelopeLikeBytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 600 }),
  fc
    .tuple(fc.array(envelopedMessage, { maxLength: 6 }), fc.uint8Array({ maxLength: 8 }))
    .map(([messages, noise]) => Buffer.concat([envelopeBytes(messages), noise])),
);
