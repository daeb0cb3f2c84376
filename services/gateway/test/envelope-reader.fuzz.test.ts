// Property-based tests of the envelope reader and the gRPC-Web text (base64) codec (`npm run fuzz` runs them longer).
import fc from "fast-check";
import { describe, expect } from "vitest";
import { createBase64Decoder, createBase64Encoder, createEnvelopeReader } from "../src/envelope-reader.js";
import { cuts, envelopeBytes, envelopedMessage, envelopeLikeBytes, split } from "./test-chunks.js";
import { itHolds } from "./test-fuzz.js";

interface Reading {
  messages: Array<{ flags: number; data: Buffer }>;
  /** Index of the chunk whose push answered false (the limit broke), or -1. */
  brokeAt: number;
  declared: number;
  /** Bytes held back after each push that answered true. */
  buffered: number[];
}

/** Feeds the chunks to a new reader until one breaks the limit; copies every message it hands out. */
function read(maxBytes: number, chunks: readonly Buffer[]): Reading {
  const messages: Reading["messages"] = [];
  const reader = createEnvelopeReader(maxBytes, (flags, data) => messages.push({ flags, data: Buffer.from(data) }));
  const buffered: number[] = [];
  for (let i = 0; i < chunks.length; i++) {
    if (!reader.push(chunks[i] as Buffer)) return { messages, brokeAt: i, declared: reader.declared, buffered };
    buffered.push(reader.buffered);
  }
  return { messages, brokeAt: -1, declared: reader.declared, buffered };
}

describe("createEnvelopeReader", () => {
  itHolds(
    "any chunking of a valid envelope stream yields the messages sent, in order, with nothing held back",
    fc.property(fc.array(envelopedMessage, { maxLength: 10 }), cuts, (messages, at) => {
      const reading = read(300, split(envelopeBytes(messages), at));
      expect(reading.brokeAt).toBe(-1);
      expect(reading.messages).toEqual(messages.map(({ flags, data }) => ({ flags, data: Buffer.from(data) })));
      expect(reading.buffered.at(-1)).toBe(0);
    }),
  );

  itHolds(
    "arbitrary bytes never throw, read the same however they are chunked, and hold back less than one message",
    fc.property(envelopeLikeBytes, fc.nat(400), cuts, (input, maxBytes, at) => {
      const whole = read(maxBytes, [Buffer.from(input)]);
      const chunks = split(input, at);
      const chunked = read(maxBytes, chunks);
      expect(chunked.messages).toEqual(whole.messages);
      expect(chunked.brokeAt >= 0).toBe(whole.brokeAt >= 0);
      expect(chunked.declared).toBe(whole.declared);
      if (whole.brokeAt >= 0) expect(whole.declared).toBeGreaterThan(maxBytes);
      else expect(chunked.buffered.at(-1)).toBe(whole.buffered.at(-1));
      for (const held of chunked.buffered) expect(held).toBeLessThan(5 + maxBytes);
      for (const message of chunked.messages) expect(message.data.length).toBeLessThanOrEqual(maxBytes);
    }),
  );
});

/** Line breaks and spaces a gRPC-Web text body may carry between base64 groups. */
const whitespace = fc.constantFrom("", "", "", "\r\n", " ", "\n");

describe("gRPC-Web text (base64)", () => {
  itHolds(
    "messages base64-encoded one by one (padding between them), arbitrarily chunked and wrapped, decode to their bytes",
    fc.property(fc.array(fc.tuple(fc.uint8Array({ maxLength: 40 }), whitespace), { maxLength: 8 }), cuts, (parts, at) => {
      const text = parts.map(([bytes, space]) => Buffer.from(bytes).toString("base64") + space).join("");
      const decode = createBase64Decoder();
      const decoded = Buffer.concat(split(Buffer.from(text, "latin1"), at).map((chunk) => decode(chunk)));
      expect(decoded).toEqual(Buffer.concat(parts.map(([bytes]) => Buffer.from(bytes))));
    }),
  );

  itHolds(
    "the encoder's output for any chunking is one continuous base64 text of the bytes, which the decoder reads back",
    fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 8 }), cuts, (chunks, at) => {
      const bytes = Buffer.concat(chunks.map((chunk) => Buffer.from(chunk)));
      const encoder = createBase64Encoder();
      const text = Buffer.concat([...chunks.map((chunk) => encoder.push(Buffer.from(chunk))), encoder.end()]);
      expect(text.toString("latin1")).toBe(bytes.toString("base64"));
      const decode = createBase64Decoder();
      expect(Buffer.concat(split(text, at).map((chunk) => decode(chunk)))).toEqual(bytes);
    }),
  );

  itHolds(
    "arbitrary bytes never throw and never decode to more than three bytes per four characters",
    fc.property(fc.uint8Array({ maxLength: 300 }), cuts, (input, at) => {
      const decode = createBase64Decoder();
      const decoded = Buffer.concat(split(input, at).map((chunk) => decode(chunk)));
      expect(decoded.length).toBeLessThanOrEqual(Math.ceil((input.length * 3) / 4));
    }),
  );
});
