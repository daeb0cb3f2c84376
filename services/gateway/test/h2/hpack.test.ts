import * as http2 from "node:http2";
import * as net from "node:net";
import { describe, expect, it } from "vitest";
import { createHpackDecoder, createHpackEncoder, type HeaderList, type HpackDecoder, HpackError } from "../../src/h2/hpack.js";
import { usedBytes } from "./used-bytes.js";

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ""), "hex");
const UNLIMITED = Number.MAX_SAFE_INTEGER;
const requestsFirst: HeaderList = [
  [":method", "GET"],
  [":scheme", "http"],
  [":path", "/"],
  [":authority", "www.example.com"],
];

/** The decoder's dynamic table, newest first: indexed fields 62, 63, … never change the table. */
function tableOf(decoder: HpackDecoder): HeaderList {
  const table: HeaderList = [];
  for (let index = 62; ; index++) {
    let field: HeaderList;
    try {
      field = decoder.decode(encodeIndex(index), UNLIMITED);
    } catch (error) {
      expect(error).toBeInstanceOf(HpackError);
      return table;
    }
    table.push(field[0]);
  }
}

function encodeIndex(index: number): Buffer {
  if (index < 127) return Buffer.from([0x80 | index]);
  const bytes = [0xff];
  let rest = index - 127;
  while (rest >= 128) {
    bytes.push((rest & 0x7f) | 0x80);
    rest >>= 7;
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

const tableSize = (table: HeaderList): number => table.reduce((sum, [name, value]) => sum + name.length + value.length + 32, 0);

function expectError(decoder: HpackDecoder, block: Buffer, message: RegExp): HpackError {
  let caught: unknown;
  try {
    decoder.decode(block, UNLIMITED);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(HpackError);
  expect((caught as HpackError).tooLarge).toBe(false);
  expect((caught as HpackError).message).toMatch(message);
  return caught as HpackError;
}

describe("RFC 7541 Appendix C", () => {
  it("C.1.2/C.1.3: multi-byte integers (as table size updates)", () => {
    const decoder = createHpackDecoder();
    expect(decoder.decode(hex("3f9a0a"), UNLIMITED)).toEqual([]); // 1337 with a 5-bit prefix
    expect(decoder.decode(hex("2a"), UNLIMITED)).toEqual([]); // 10 with a 5-bit prefix
    expect(decoder.decode(hex("3fe11f"), UNLIMITED)).toEqual([]); // 4096, the limit
    expectError(decoder, hex("3fe21f"), /above 4096/); // 4097
  });

  it("C.2.1: literal with indexing, new name", () => {
    const decoder = createHpackDecoder();
    const block = hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572");
    expect(decoder.decode(block, UNLIMITED)).toEqual([["custom-key", "custom-header"]]);
    const table = tableOf(decoder);
    expect(table).toEqual([["custom-key", "custom-header"]]);
    expect(tableSize(table)).toBe(55);
  });

  it("C.2.2: literal without indexing, indexed name", () => {
    const decoder = createHpackDecoder();
    expect(decoder.decode(hex("040c 2f73 616d 706c 652f 7061 7468"), UNLIMITED)).toEqual([[":path", "/sample/path"]]);
    expect(tableOf(decoder)).toEqual([]);
  });

  it("C.2.3: literal never indexed, new name", () => {
    const decoder = createHpackDecoder();
    expect(decoder.decode(hex("1008 7061 7373 776f 7264 0673 6563 7265 74"), UNLIMITED)).toEqual([["password", "secret"]]);
    expect(tableOf(decoder)).toEqual([]);
  });

  it("C.2.4: indexed field", () => {
    const decoder = createHpackDecoder();
    expect(decoder.decode(hex("82"), UNLIMITED)).toEqual([[":method", "GET"]]);
    expect(tableOf(decoder)).toEqual([]);
  });

  const requests: HeaderList[] = [
    [
      [":method", "GET"],
      [":scheme", "http"],
      [":path", "/"],
      [":authority", "www.example.com"],
    ],
    [
      [":method", "GET"],
      [":scheme", "http"],
      [":path", "/"],
      [":authority", "www.example.com"],
      ["cache-control", "no-cache"],
    ],
    [
      [":method", "GET"],
      [":scheme", "https"],
      [":path", "/index.html"],
      [":authority", "www.example.com"],
      ["custom-key", "custom-value"],
    ],
  ];
  const requestTables: HeaderList[] = [
    [[":authority", "www.example.com"]],
    [
      ["cache-control", "no-cache"],
      [":authority", "www.example.com"],
    ],
    [
      ["custom-key", "custom-value"],
      ["cache-control", "no-cache"],
      [":authority", "www.example.com"],
    ],
  ];
  const requestSizes = [57, 110, 164];

  const requestBlocks = {
    "C.3 (raw)": [
      "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
      "8286 84be 5808 6e6f 2d63 6163 6865",
      "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
    ],
    "C.4 (Huffman)": [
      "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
      "8286 84be 5886 a8eb 1064 9cbf",
      "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
    ],
  };

  for (const [section, blocks] of Object.entries(requestBlocks)) {
    it(`${section}: three requests on one decoder`, () => {
      const decoder = createHpackDecoder();
      blocks.forEach((block, i) => {
        expect(decoder.decode(hex(block), UNLIMITED)).toEqual(requests[i]);
        const table = tableOf(decoder);
        expect(table).toEqual(requestTables[i]);
        expect(tableSize(table)).toBe(requestSizes[i]);
      });
    });
  }

  it("C.3: the encoder produces the RFC's bytes for the three requests", () => {
    const encoder = createHpackEncoder();
    requestBlocks["C.3 (raw)"].forEach((block, i) => {
      expect(encoder.encode(requests[i]).toString("hex")).toBe(hex(block).toString("hex"));
    });
  });

  const cookie = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
  const responses: HeaderList[] = [
    [
      [":status", "302"],
      ["cache-control", "private"],
      ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
      ["location", "https://www.example.com"],
    ],
    [
      [":status", "307"],
      ["cache-control", "private"],
      ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
      ["location", "https://www.example.com"],
    ],
    [
      [":status", "200"],
      ["cache-control", "private"],
      ["date", "Mon, 21 Oct 2013 20:13:22 GMT"],
      ["location", "https://www.example.com"],
      ["content-encoding", "gzip"],
      ["set-cookie", cookie],
    ],
  ];
  const responseTables: HeaderList[] = [
    [
      ["location", "https://www.example.com"],
      ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
      ["cache-control", "private"],
      [":status", "302"],
    ],
    [
      [":status", "307"],
      ["location", "https://www.example.com"],
      ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
      ["cache-control", "private"],
    ],
    [
      ["set-cookie", cookie],
      ["content-encoding", "gzip"],
      ["date", "Mon, 21 Oct 2013 20:13:22 GMT"],
    ],
  ];
  const responseSizes = [222, 222, 215];

  const responseBlocks = {
    "C.5 (raw)": [
      `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
       2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
       6c65 2e63 6f6d`,
      "4803 3330 37c1 c0bf",
      `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
       54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
       5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
       3d31`,
    ],
    "C.6 (Huffman)": [
      `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
       2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`,
      "4883 640e ffc1 c0bf",
      `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
       77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
       9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
    ],
  };

  for (const [section, blocks] of Object.entries(responseBlocks)) {
    it(`${section}: three responses with eviction in a 256-byte table`, () => {
      const decoder = createHpackDecoder();
      // The RFC's encoder uses a 256-byte table without a size update: the size we advertise is the initial size.
      decoder.setMaxTableSize(256);
      blocks.forEach((block, i) => {
        expect(decoder.decode(hex(block), UNLIMITED)).toEqual(responses[i]);
        const table = tableOf(decoder);
        expect(table).toEqual(responseTables[i]);
        expect(tableSize(table)).toBe(responseSizes[i]);
      });
    });
  }
});

describe("decoder table size", () => {
  it("setMaxTableSize bounds updates, and shrinks the table once the peer has sent an update", () => {
    const decoder = createHpackDecoder();
    decoder.setMaxTableSize(100);
    expectError(decoder, hex("3f46"), /above 100/); // 101
    expect(decoder.decode(hex("3f45"), UNLIMITED)).toEqual([]); // 100
    // Two 34-byte entries fit in 100, a third evicts the first.
    decoder.decode(hex("4001 6101 3140 0162 0132 4001 6301 33"), UNLIMITED);
    expect(tableOf(decoder)).toEqual([
      ["c", "3"],
      ["b", "2"],
    ]);
    // A lower advertised limit evicts right away (the peer must follow with an update anyway).
    decoder.setMaxTableSize(50);
    expect(tableOf(decoder)).toEqual([["c", "3"]]);
    // Raising the limit after an update does not grow the current size: a new entry still evicts.
    decoder.setMaxTableSize(4096);
    decoder.decode(hex("4001 6401 34"), UNLIMITED);
    expect(tableOf(decoder)).toEqual([["d", "4"]]);
    // An update to 0 empties the table; updates may repeat at the block start.
    expect(decoder.decode(hex("20 3f e1 1f 82"), UNLIMITED)).toEqual([[":method", "GET"]]);
    expect(tableOf(decoder)).toEqual([]);
  });

  it("before any size update, a larger advertised size is also the current size", () => {
    const decoder = createHpackDecoder();
    decoder.setMaxTableSize(8192);
    // 100 entries of 1 + 40 + 32 = 73 bytes: 7300 bytes, more than the default 4096.
    const entry = Buffer.concat([hex("4001 61 28"), Buffer.alloc(40, 0x76)]);
    for (let i = 0; i < 100; i++) decoder.decode(entry, UNLIMITED);
    expect(tableOf(decoder)).toHaveLength(100);
  });

  it("an entry larger than the table empties it and is not added", () => {
    const decoder = createHpackDecoder();
    decoder.setMaxTableSize(64);
    decoder.decode(hex("4001 6101 31"), UNLIMITED);
    const big = Buffer.concat([hex("4001 62 20"), Buffer.alloc(32, 0x78)]);
    expect(decoder.decode(big, UNLIMITED)).toEqual([["b", "x".repeat(32)]]);
    expect(tableOf(decoder)).toEqual([]);
  });
});

describe("malformed input", () => {
  const cases: Array<[string, string, RegExp]> = [
    ["index 0", "80", /index 0/],
    ["index beyond the static table with an empty dynamic table", "be", /beyond/],
    ["index far beyond the tables", "ff 80 01", /beyond/],
    ["name index beyond the tables", "7f 01 01 61", /beyond/],
    ["truncated integer", "ff", /truncated integer/],
    ["truncated integer continuation", "ff 80", /truncated integer/],
    ["integer with too many continuation bytes", "ff 80 80 80 80 80 01", /too long/],
    ["integer over 2^31", "ff ff ff ff ff 0f", /overflow/],
    ["missing name string", "40", /truncated string/],
    ["missing value string", "04", /truncated string/],
    ["truncated string", "40 05 61", /truncated string/],
    ["truncated Huffman string", "04 83 1f", /truncated string/],
    ["Huffman EOS", "04 84 ff ff ff ff", /EOS/],
    ["Huffman EOS after a symbol", "04 85 1f ff ff ff ff", /EOS/],
    ["Huffman padding with a zero bit", "04 81 18", /padding/],
    ["Huffman padding longer than 7 bits", "04 82 1f ff", /padding/],
    ["Huffman string of padding only", "04 81 ff", /padding/],
    ["table size update above the limit", "3f e2 1f", /above 4096/],
    ["table size update after a field", "82 20", /after a header field/],
  ];
  for (const [label, block, message] of cases) {
    it(label, () => {
      expectError(createHpackDecoder(), hex(block), message);
    });
  }

  it("accepts valid Huffman padding and an empty Huffman string", () => {
    const decoder = createHpackDecoder();
    expect(decoder.decode(hex("04 81 1f"), UNLIMITED)).toEqual([[":path", "a"]]);
    expect(decoder.decode(hex("04 80"), UNLIMITED)).toEqual([[":path", ""]]);
    // '0' (00000) then 'a' (00011) then 6 bits of padding: 00000 00011 111111.
    expect(decoder.decode(hex("04 82 00 ff"), UNLIMITED)).toEqual([[":path", "0a"]]);
  });

  it("a header list over maxListSize throws tooLarge after keeping the table in sync", () => {
    const decoder = createHpackDecoder();
    const encoder = createHpackEncoder();
    const big: HeaderList = [
      [":method", "POST"],
      ["x-one", "a".repeat(100)],
      ["x-two", "b".repeat(100)],
      ["x-three", "c".repeat(100)],
    ];
    let caught: unknown;
    try {
      decoder.decode(encoder.encode(big), 200);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(HpackError);
    expect((caught as HpackError).tooLarge).toBe(true);
    // The next block refers to all three entries inserted by the rejected one.
    const again = encoder.encode(big);
    expect(again.length).toBe(4);
    expect(decoder.decode(again, UNLIMITED)).toEqual(big);
    // Exactly at the limit is fine.
    const size = tableSize(big);
    expect(decoder.decode(encoder.encode(big), size)).toEqual(big);
    expect(() => decoder.decode(encoder.encode(big), size - 1)).toThrow(HpackError);
  });

  it("accepts any Uint8Array, not just Buffers", () => {
    const decoder = createHpackDecoder();
    const bytes = new Uint8Array([0, 0, ...hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d")]);
    expect(decoder.decode(bytes.subarray(2), UNLIMITED)).toEqual(requestsFirst);
  });
});

describe("encoder", () => {
  it("indexes repeated fields and keeps per-message and sensitive values out of the table", () => {
    const encoder = createHpackEncoder();
    const decoder = createHpackDecoder();
    const request = (id: string): HeaderList => [
      [":method", "POST"],
      [":scheme", "http"],
      [":path", "/portico.greeter.v1.GreeterService/SayHello"],
      [":authority", "gateway.internal:8080"],
      ["content-type", "application/grpc"],
      ["te", "trailers"],
      ["grpc-timeout", "4999m"],
      ["x-request-id", id],
      ["x-portico-identity", "user-1234.signed"],
      ["authorization", "Bearer secret"],
    ];
    const first = encoder.encode(request("r-1"));
    expect(decoder.decode(first, UNLIMITED)).toEqual(request("r-1"));
    const second = encoder.encode(request("r-2"));
    expect(decoder.decode(second, UNLIMITED)).toEqual(request("r-2"));
    // 7 indexed fields, then literals: grpc-timeout (1 + 13 + 6), x-request-id (1 + 13 + 4), authorization (2 + 14).
    expect(second.length).toBe(7 + 20 + 18 + 16);
    // The table holds only the indexable fields.
    expect(tableOf(decoder).map(([name]) => name)).toEqual(["x-portico-identity", "te", "content-type", ":authority", ":path"]);
    // Never indexed: representation 0001xxxx with the static name index 23 (0x1f 0x08).
    expect(second.includes(Buffer.from([0x1f, 0x08, 13]))).toBe(true);
  });

  it("does not index values over 512 bytes", () => {
    const encoder = createHpackEncoder();
    const decoder = createHpackDecoder();
    const list: HeaderList = [["x-big", "v".repeat(513)]];
    expect(decoder.decode(encoder.encode(list), UNLIMITED)).toEqual(list);
    expect(tableOf(decoder)).toEqual([]);
    expect(encoder.encode(list).length).toBeGreaterThan(513);
  });

  it("costs a connection little until it indexes something: 2,000 encoders hold under 1 KB each (were 31 KB)", () => {
    const before = usedBytes();
    const encoders = Array.from({ length: 2000 }, () => createHpackEncoder());
    const perEncoder = (usedBytes() - before) / encoders.length;
    expect(perEncoder).toBeLessThan(1024);
    // Each still knows the static table and the policies: a static pair is one byte, a credential never indexed.
    expect(encoders[1999]?.encode([[":method", "POST"]]).toString("hex")).toBe("83");
    expect(encoders[0]?.encode([["authorization", "x"]]).toString("hex")).toBe("1f080178");
  });

  it("signals table size changes: the smallest, then the final size", () => {
    const encoder = createHpackEncoder();
    const decoder = createHpackDecoder();
    const list: HeaderList = [["x-a", "1"]];
    decoder.decode(encoder.encode(list), UNLIMITED);
    encoder.setMaxTableSize(0);
    encoder.setMaxTableSize(1000);
    const block = encoder.encode(list);
    expect(block.subarray(0, 4).toString("hex")).toBe("203fc907"); // 0, then 1000
    expect(decoder.decode(block, UNLIMITED)).toEqual(list);
    expect(tableOf(decoder)).toEqual(list);
    // Larger than our own cap: the encoder grows back to 4096 only.
    encoder.setMaxTableSize(65536);
    const grown = encoder.encode(list);
    expect(grown.toString("hex")).toBe("3fe11fbe");
    expect(decoder.decode(grown, UNLIMITED)).toEqual(list);
    expect(encoder.encode(list).length).toBe(1);
  });
});

describe("encoder → decoder round trips", () => {
  /** mulberry32: a small seeded PRNG so failures reproduce. */
  function random(seed: number): () => number {
    let a = seed;
    return () => {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  for (const seed of [1, 2, 3]) {
    it(`500 random blocks through one pair (seed ${seed})`, () => {
      const rand = random(seed);
      const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)];
      const text = (length: number, alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_/.=;, "): string => {
        let out = "";
        for (let i = 0; i < length; i++) out += alphabet[Math.floor(rand() * alphabet.length)];
        return out;
      };
      const latin1 = Array.from({ length: 256 }, (_, code) => String.fromCharCode(code)).join("");
      const names = [
        ":path",
        ":authority",
        "content-type",
        "user-agent",
        "accept-encoding",
        "x-portico-identity",
        "x-request-id",
        "traceparent",
        "grpc-timeout",
        "authorization",
        "cookie",
        "date",
        "content-length",
        "grpc-message",
        "x-custom-a",
        "x-custom-b",
        "x-custom-c",
      ];
      const sticky = Array.from({ length: 40 }, () => text(1 + Math.floor(rand() * 40)));
      const encoder = createHpackEncoder();
      const decoder = createHpackDecoder();
      let totalBytes = 0;
      for (let block = 0; block < 500; block++) {
        if (rand() < 0.03) {
          const size = pick([0, 1, 40, 100, 256, 1000, 4096, 10_000]);
          // On the wire: we would advertise `size` to the peer, and the peer's encoder learns it from our SETTINGS.
          decoder.setMaxTableSize(size);
          encoder.setMaxTableSize(size);
        }
        const list: HeaderList = [];
        if (rand() < 0.7) list.push([":method", pick(["GET", "POST", "PUT"])], [":path", pick(["/", "/a.B/C", text(20)])]);
        const count = Math.floor(rand() * 14);
        for (let i = 0; i < count; i++) {
          const r = rand();
          const name = r < 0.8 ? pick(names) : text(1 + Math.floor(rand() * 30), "abcdefghijklmnopqrstuvwxyz-");
          let value: string;
          if (r < 0.6) value = pick(sticky);
          else if (r < 0.75) value = text(Math.floor(rand() * 60));
          else if (r < 0.85) value = text(Math.floor(rand() * 40), latin1);
          else if (r < 0.93) value = "";
          else value = text(400 + Math.floor(rand() * 800));
          list.push([name, value]);
        }
        const encoded = encoder.encode(list);
        totalBytes += encoded.length;
        expect(decoder.decode(encoded, UNLIMITED)).toEqual(list);
      }
      expect(totalBytes).toBeGreaterThan(0);
    });
  }

  it("compresses a repeated gRPC request to about a byte per stable header", () => {
    const encoder = createHpackEncoder();
    const decoder = createHpackDecoder();
    const list: HeaderList = [
      [":method", "POST"],
      [":scheme", "https"],
      [":path", "/portico.greeter.v1.GreeterService/SayHello"],
      [":authority", "api.example.com"],
      ["content-type", "application/grpc"],
      ["te", "trailers"],
      ["grpc-accept-encoding", "identity,deflate,gzip"],
      ["user-agent", "grpc-node-js/1.14.7"],
      ["x-portico-identity", "eyJzdWIiOiIxMjM0In0.c2ln"],
      ["traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"],
    ];
    decoder.decode(encoder.encode(list), UNLIMITED);
    const again = encoder.encode(list);
    // 9 indexed fields, then traceparent without indexing: 1 + 1 + 11 + 1 + 55.
    expect(again.length).toBe(9 + 14 + 55);
    expect(decoder.decode(again, UNLIMITED)).toEqual(list);
  });
});

// ---------------------------------------------------------------------------------------------------------------------
// Against nghttp2 (node:http2) over a raw socket

interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

const FRAME_HEADERS = 1;
const FRAME_SETTINGS = 4;
const FRAME_CONTINUATION = 9;
const FLAG_END_STREAM = 0x1;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;

function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(stream, 5);
  return Buffer.concat([header, payload]);
}

/** A raw HTTP/2 client connection: acks SETTINGS, collects complete header blocks per stream. */
async function rawClient(port: number) {
  const socket = net.connect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const blocks = new Map<number, Buffer>();
  let partial: { stream: number; parts: Buffer[] } | undefined;
  let pending = Buffer.alloc(0);
  let wake: (() => void) | undefined;
  socket.on("data", (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 9) {
      const length = pending.readUIntBE(0, 3);
      if (pending.length < 9 + length) break;
      const f: Frame = {
        type: pending[3],
        flags: pending[4],
        stream: pending.readUInt32BE(5) & 0x7fffffff,
        payload: pending.subarray(9, 9 + length),
      };
      pending = pending.subarray(9 + length);
      if (f.type === FRAME_SETTINGS && (f.flags & FLAG_ACK) === 0) socket.write(frame(FRAME_SETTINGS, FLAG_ACK, 0));
      if (f.type === FRAME_HEADERS) {
        let start = 0;
        let end = f.payload.length;
        if (f.flags & FLAG_PADDED) {
          start = 1;
          end -= f.payload[0];
        }
        if (f.flags & FLAG_PRIORITY) start += 5;
        partial = { stream: f.stream, parts: [f.payload.subarray(start, end)] };
      } else if (f.type === FRAME_CONTINUATION && partial !== undefined) {
        partial.parts.push(f.payload);
      }
      if ((f.type === FRAME_HEADERS || f.type === FRAME_CONTINUATION) && f.flags & FLAG_END_HEADERS && partial) {
        blocks.set(partial.stream, Buffer.concat(partial.parts));
        partial = undefined;
      }
    }
    wake?.();
  });
  socket.write(Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1"));
  socket.write(frame(FRAME_SETTINGS, 0, 0));
  return {
    socket,
    sendHeaders(stream: number, block: Buffer) {
      socket.write(frame(FRAME_HEADERS, FLAG_END_HEADERS | FLAG_END_STREAM, stream, block));
    },
    async headerBlock(stream: number): Promise<Buffer> {
      for (;;) {
        const block = blocks.get(stream);
        if (block !== undefined) return block;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    },
  };
}

interface Received {
  raw: HeaderList;
  sensitive: string[];
}

async function withServer(
  respond: (stream: http2.ServerHttp2Stream, received: Received) => void,
  run: (port: number, received: Map<number, Received>) => Promise<void>,
): Promise<void> {
  const server = http2.createServer();
  const received = new Map<number, Received>();
  server.on("stream", (stream, headers, _flags, ...rest: unknown[]) => {
    const flat = rest[0] as string[];
    const raw: HeaderList = [];
    for (let i = 0; i < flat.length; i += 2) raw.push([flat[i], flat[i + 1]]);
    const sensitive = (headers as Record<symbol, string[] | undefined>)[http2.sensitiveHeaders] ?? [];
    const entry = { raw, sensitive };
    received.set(stream.id ?? 0, entry);
    respond(stream, entry);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    await run((server.address() as net.AddressInfo).port, received);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

describe("against node:http2 (nghttp2)", () => {
  it("nghttp2 decodes our blocks, including a second request that reuses the dynamic table", async () => {
    const encoder = createHpackEncoder();
    const request = (path: string, id: string): HeaderList => [
      [":method", "POST"],
      [":scheme", "http"],
      [":path", path],
      [":authority", "127.0.0.1:1234"],
      ["content-type", "application/grpc+proto"],
      ["te", "trailers"],
      ["x-portico-identity", "user-42"],
      ["x-request-id", id],
      ["authorization", "Bearer abc.def"],
      ["x-latin1", "caf\u00e9 \u00ff"],
      ["x-empty", ""],
    ];
    await withServer(
      (stream) => stream.respond({ ":status": 200 }, { endStream: true }),
      async (port, received) => {
        const client = await rawClient(port);
        try {
          const first = encoder.encode(request("/a.B/C", "req-1"));
          client.sendHeaders(1, first);
          await client.headerBlock(1);
          const second = encoder.encode(request("/a.B/D", "req-2"));
          expect(second.length).toBeLessThan(first.length / 2);
          client.sendHeaders(3, second);
          await client.headerBlock(3);
          expect(received.get(1)?.raw).toEqual(request("/a.B/C", "req-1"));
          expect(received.get(3)?.raw).toEqual(request("/a.B/D", "req-2"));
          expect(received.get(1)?.sensitive).toEqual(["authorization"]);
          expect(received.get(3)?.sensitive).toEqual(["authorization"]);
        } finally {
          client.socket.destroy();
        }
      },
    );
  });

  it("we decode nghttp2's blocks: Huffman, indexing, never-indexed, every byte value it accepts", async () => {
    const decoder = createHpackDecoder();
    // Every byte node lets into a header value, each in a value nghttp2 will Huffman-code (mostly 5-bit 'a's).
    const bytes = [
      0x09,
      ...Array.from({ length: 0x7f - 0x20 }, (_, i) => 0x20 + i),
      ...Array.from({ length: 128 }, (_, i) => 0x80 + i),
    ];
    const everyByte: HeaderList = bytes.map((byte) => [
      `x-byte-${byte}`,
      `aaaaaaaaaaaaaaaaaaaaaaa${String.fromCharCode(byte)}aaaa`,
    ]);
    const response = (n: number): HeaderList => [
      [":status", "200"],
      ["content-type", "application/grpc"],
      ["grpc-encoding", "identity"],
      ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
      ["x-huffman", "www.example.com/some/path?query=value&n=1"],
      ["x-counter", `value-${n}`],
      ["x-secret", "do not index"],
      ["set-cookie", "a=b; Path=/"],
      ["x-latin1", "caf\u00e9 \u00ff"],
      ...(n === 3 ? everyByte : []),
    ];
    await withServer(
      (stream) => {
        const n = ((stream.id ?? 0) + 1) / 2;
        const headers: http2.OutgoingHttpHeaders = { [http2.sensitiveHeaders]: ["x-secret"] };
        for (const [name, value] of response(n)) headers[name] = name === ":status" ? Number(value) : value;
        stream.respond(headers, { endStream: true });
      },
      async (port) => {
        const client = await rawClient(port);
        const encoder = createHpackEncoder();
        try {
          const request: HeaderList = [
            [":method", "GET"],
            [":scheme", "http"],
            [":path", "/"],
            [":authority", "localhost"],
          ];
          client.sendHeaders(1, encoder.encode(request));
          const first = await client.headerBlock(1);
          expect(decoder.decode(first, UNLIMITED)).toEqual(response(1));
          client.sendHeaders(3, encoder.encode(request));
          const second = await client.headerBlock(3);
          expect(decoder.decode(second, UNLIMITED)).toEqual(response(2));
          // nghttp2 reused its dynamic table: far fewer bytes than the raw text of the fields.
          const rawLength = response(2).reduce((sum, [name, value]) => sum + name.length + value.length, 0);
          expect(second.length).toBeLessThan(rawLength / 2);
          // Every byte value, Huffman-coded: 223 more fields that also churn through the 4096-byte table.
          client.sendHeaders(5, encoder.encode(request));
          const third = await client.headerBlock(5);
          expect(decoder.decode(third, UNLIMITED)).toEqual(response(3));
          const thirdRaw = response(3).reduce((sum, [name, value]) => sum + name.length + value.length, 0);
          expect(third.length).toBeLessThan(thirdRaw);
        } finally {
          client.socket.destroy();
        }
      },
    );
  });
});

describe("long literals a client repeats", () => {
  it("decode to the same text each time, and a different value of the same length to its own text", () => {
    const encoder = createHpackEncoder();
    const decoder = createHpackDecoder();
    const token = (c: string) => `Bearer ${c.repeat(300)}`;
    // `authorization` is never indexed: it arrives as a literal on every request.
    const first = decoder.decode(encoder.encode([["authorization", token("a")]]), 65_536);
    const again = decoder.decode(encoder.encode([["authorization", token("a")]]), 65_536);
    const other = decoder.decode(encoder.encode([["authorization", token("b")]]), 65_536);
    expect(first).toEqual([["authorization", token("a")]]);
    expect(again).toEqual([["authorization", token("a")]]);
    expect(other).toEqual([["authorization", token("b")]]);
  });

  it("tell a Huffman-coded literal from a raw one with the same bytes", () => {
    const decoder = createHpackDecoder();
    // 100 bytes that are both a raw latin1 string and 160 Huffman codes of "a" (00011).
    const bytes = Buffer.concat(Array.from({ length: 20 }, () => Buffer.from([0x18, 0xc6, 0x31, 0x8c, 0x63])));
    const literal = (huffman: boolean) =>
      Buffer.concat([Buffer.from([0x00, 0x01, 0x78, (huffman ? 0x80 : 0) | bytes.length]), bytes]);
    expect(decoder.decode(literal(false), 65_536)).toEqual([["x", bytes.toString("latin1")]]);
    expect(decoder.decode(literal(true), 65_536)).toEqual([["x", "a".repeat(160)]]);
    expect(decoder.decode(literal(false), 65_536)).toEqual([["x", bytes.toString("latin1")]]);
  });
});
