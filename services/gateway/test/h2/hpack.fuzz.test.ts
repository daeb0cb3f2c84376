// Property-based tests of the HPACK decoder and encoder (`npm run fuzz` runs them longer).
import * as http2 from "node:http2";
import * as net from "node:net";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { createHpackDecoder, createHpackEncoder, type HeaderList, type HpackDecoder, HpackError } from "../../src/h2/hpack.js";
import { itHolds } from "../test-fuzz.js";
import { readFrames } from "./test-frames.js";

const UNLIMITED = Number.MAX_SAFE_INTEGER;
const fieldSize = (list: HeaderList): number => list.reduce((sum, [name, value]) => sum + name.length + value.length + 32, 0);

/** An HPACK integer with an N-bit prefix (`mask` = 2^N - 1) under the prefix bits `flags`; `overlong` adds zero continuations. */
function hpackInteger(flags: number, mask: number, value: number, overlong = 0): number[] {
  if (value < mask && overlong === 0) return [flags | value];
  const out = [flags | mask];
  let rest = value - mask;
  while (rest >= 0x80) {
    out.push((rest % 128) | 0x80);
    rest = Math.floor(rest / 128);
  }
  for (let i = 0; i < overlong; i++) {
    out.push(rest | 0x80);
    rest = 0;
  }
  out.push(rest);
  return out;
}

/** The decoder's dynamic table, newest first, read with indexed fields (which never change it). */
function tableOf(decoder: HpackDecoder): HeaderList {
  const table: HeaderList = [];
  for (let index = 62; ; index++) {
    try {
      table.push(...decoder.decode(Buffer.from(hpackInteger(0x80, 0x7f, index)), UNLIMITED));
    } catch (error) {
      expect(error).toBeInstanceOf(HpackError);
      return table;
    }
  }
}

/** Decodes, answering the list or the HpackError; anything else thrown fails the property. */
function decodeOrError(decoder: HpackDecoder, block: Uint8Array, maxListSize: number): HeaderList | HpackError {
  try {
    return decoder.decode(block, maxListSize);
  } catch (error) {
    if (error instanceof HpackError) return error;
    throw error;
  }
}

const latin1Char = fc.integer({ min: 0, max: 255 }).map((code) => String.fromCharCode(code));
const latin1 = (maxLength: number) => fc.string({ unit: latin1Char, maxLength });
/** Names the encoder treats specially (static, never indexed, never worth indexing) and arbitrary lowercase ones. */
const headerName = fc.oneof(
  fc.constantFrom(
    ":authority",
    ":method",
    ":path",
    ":status",
    "content-type",
    "authorization",
    "cookie",
    "set-cookie",
    "x-request-id",
    "grpc-message",
    "accept-encoding",
    "te",
  ),
  fc.stringMatching(/^[a-z0-9-]{1,24}$/),
);
const headerValue = fc.oneof(
  { weight: 6, arbitrary: latin1(40) },
  { weight: 1, arbitrary: fc.constantFrom("", "GET", "POST", "/", "200", "gzip, deflate", "http") },
  // Long literals: the decoder's repeat cache (64+ bytes) and values never indexed (> 512).
  { weight: 1, arbitrary: latin1(700) },
);
const headerList = fc.array(fc.tuple(headerName, headerValue), { maxLength: 12 });

type Op = { block: HeaderList; maxListSize: number } | { tableSize: number };
const ops: fc.Arbitrary<Op[]> = fc.array(
  fc.oneof(
    { weight: 8, arbitrary: fc.record({ block: headerList, maxListSize: fc.oneof(fc.constant(UNLIMITED), fc.nat(3000)) }) },
    { weight: 1, arbitrary: fc.record({ tableSize: fc.oneof(fc.nat(8192), fc.constantFrom(0, 4096, 2 ** 32 - 1)) }) },
  ),
  { maxLength: 30 },
);

describe("HPACK round trip (own encoder → own decoder)", () => {
  itHolds(
    "any sequence of header lists and table size changes decodes to the lists sent, the tables in step",
    fc.property(ops, (sequence) => {
      const encoder = createHpackEncoder();
      const decoder = createHpackDecoder();
      for (const op of sequence) {
        if ("tableSize" in op) {
          // The decoder's side advertises the size; the encoder applies it, and the ACK is
          // back at the decoder before any block encoded with it.
          encoder.setMaxTableSize(op.tableSize);
          decoder.setMaxTableSize(op.tableSize);
          continue;
        }
        const result = decodeOrError(decoder, encoder.encode(op.block), op.maxListSize);
        if (fieldSize(op.block) <= op.maxListSize) {
          expect(result).toEqual(op.block);
        } else {
          // Too large for the receiver, yet the block was decoded whole: later blocks still agree.
          expect(result).toBeInstanceOf(HpackError);
          expect((result as HpackError).tooLarge).toBe(true);
        }
      }
      expect(fieldSize(tableOf(decoder))).toBeLessThanOrEqual(4096);
    }),
  );
});

/** One representation of a hostile but plausible block (RFC 7541 §6), as its bytes. */
const stringLiteral = fc
  .record({ huffman: fc.boolean(), bytes: fc.uint8Array({ maxLength: 40 }), lie: fc.integer({ min: -3, max: 3 }) })
  .map(({ huffman, bytes, lie }) => [...hpackInteger(huffman ? 0x80 : 0, 0x7f, Math.max(0, bytes.length + lie)), ...bytes]);
const representation: fc.Arbitrary<number[]> = fc.oneof(
  // Indexed field, index anywhere (0, static, dynamic, far beyond).
  fc
    .record({ index: fc.oneof(fc.nat(130), fc.nat(0x7fffffff)), overlong: fc.nat(6) })
    .map(({ index, overlong }) => hpackInteger(0x80, 0x7f, index, overlong)),
  // Literal with incremental / without / never indexing, indexed or literal name.
  fc
    .record({
      kind: fc.constantFrom([0x40, 0x3f] as const, [0x00, 0x0f] as const, [0x10, 0x0f] as const),
      nameIndex: fc.nat(100),
      name: stringLiteral,
      value: stringLiteral,
    })
    .map(({ kind, nameIndex, name, value }) => [
      ...hpackInteger(kind[0], kind[1], nameIndex),
      ...(nameIndex === 0 ? name : []),
      ...value,
    ]),
  // Dynamic table size update, also above the limit and after fields.
  fc.oneof(fc.nat(5000), fc.nat(0x7fffffff)).map((size) => hpackInteger(0x20, 0x1f, size)),
  // Raw bytes.
  fc.array(fc.nat(255), { maxLength: 8 }),
);
const hostileBlock = fc.array(representation, { maxLength: 12 }).map((parts) => Buffer.from(parts.flat()));

describe("HPACK decoder on hostile input", () => {
  itHolds(
    "arbitrary bytes throw nothing but HpackError, the list stays under maxListSize and the table under its size",
    fc.property(
      fc.array(fc.oneof(hostileBlock, fc.uint8Array({ maxLength: 200 })), { minLength: 1, maxLength: 8 }),
      fc.oneof(fc.constant(UNLIMITED), fc.nat(2000)),
      fc.option(fc.nat(8192)),
      (blocks, maxListSize, advertised) => {
        const decoder = createHpackDecoder();
        if (advertised !== null) decoder.setMaxTableSize(advertised);
        for (const block of blocks) {
          const result = decodeOrError(decoder, block, maxListSize);
          if (!(result instanceof HpackError)) {
            expect(fieldSize(result)).toBeLessThanOrEqual(maxListSize);
            for (const [name, value] of result) {
              expect(typeof name).toBe("string");
              expect(typeof value).toBe("string");
            }
          }
        }
        expect(fieldSize(tableOf(decoder))).toBeLessThanOrEqual(advertised ?? 4096);
      },
    ),
  );
});

// --- nghttp2's encoder (Huffman strings, its own indexing choices) → our decoder ---

/** A TCP server that hands every HTTP/2 HEADERS block (one per request, no CONTINUATION) to `onBlock`. */
async function blockCollector(onBlock: (block: Buffer) => void): Promise<{ port: number; close(): void }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    // Our SETTINGS (none changed) and the ACK of the client's.
    socket.write(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0]));
    let buffered: Buffer = Buffer.alloc(0);
    let prefaceSeen = false;
    socket.on("data", (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (!prefaceSeen) {
        if (buffered.length < 24) return;
        buffered = buffered.subarray(24);
        prefaceSeen = true;
      }
      const { frames, rest } = readFrames(buffered);
      buffered = rest;
      for (const { type, flags, payload: framePayload } of frames) {
        if (type !== 1) continue;
        let payload = framePayload;
        if ((flags & 0x8) !== 0) payload = payload.subarray(1, payload.length - (payload[0] as number));
        if ((flags & 0x20) !== 0) payload = payload.subarray(5);
        expect(flags & 0x4).toBe(0x4);
        onBlock(Buffer.from(payload));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close() {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

/** Header names nghttp2 and node accept as-is: lowercase tokens outside the connection-specific ones. */
const nodeName = fc.stringMatching(/^x-[a-z0-9-]{1,20}$/);
/** Values node sends unchanged: visible ASCII, space, tab and latin1 above 0x80; no leading or trailing whitespace. */
const nodeValueChar = fc.oneof(
  fc.integer({ min: 0x21, max: 0x7e }),
  fc.constantFrom(0x20, 0x09),
  fc.integer({ min: 0x80, max: 0xff }),
);
const nodeValue = fc.array(nodeValueChar, { maxLength: 80 }).map((codes) => String.fromCharCode(...codes).trim());
const nodeRequests = fc.array(fc.uniqueArray(fc.tuple(nodeName, nodeValue), { selector: ([name]) => name, maxLength: 10 }), {
  minLength: 1,
  maxLength: 8,
});

describe("HPACK decoder against nghttp2's encoder", () => {
  const blocks: Buffer[] = [];
  let collector: { port: number; close(): void };
  beforeAll(async () => {
    collector = await blockCollector((block) => blocks.push(block));
  });
  afterAll(() => collector.close());

  itHolds(
    "header lists node:http2 sends on one connection (Huffman, its dynamic table) decode to what it sent",
    fc.asyncProperty(nodeRequests, async (requests) => {
      blocks.length = 0;
      const client = http2.connect(`http://127.0.0.1:${collector.port}`);
      client.on("error", () => {});
      try {
        for (const fields of requests) {
          const stream = client.request({ ":path": "/p", ...Object.fromEntries(fields) }, { endStream: true });
          stream.on("error", () => {});
        }
        const deadline = Date.now() + 5000;
        while (blocks.length < requests.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
      } finally {
        client.destroy();
      }
      expect(blocks.length).toBe(requests.length);
      const decoder = createHpackDecoder();
      requests.forEach((fields, i) => {
        const decoded = decoder.decode(blocks[i] as Buffer, UNLIMITED);
        expect(decoded.filter(([name]) => !name.startsWith(":"))).toEqual(fields);
        expect(decoded.find(([name]) => name === ":path")).toEqual([":path", "/p"]);
      });
    }),
  );
});
