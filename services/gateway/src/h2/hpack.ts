/**
 * HPACK (RFC 7541) header compression for the gateway's own HTTP/2 engine.
 *
 * Decoder: the whole RFC (static and dynamic tables, integers with overflow guards, raw and Huffman string literals,
 * every representation, dynamic table size updates). Encoder: raw strings only (no Huffman), static/dynamic indexing with
 * a per-name policy for values that change on every message or must not be indexed. Strings are latin1 on both ends,
 * like node:http2.
 */

/** A decoded header field list in wire order; names are as received (lowercase in HTTP/2). */
export type HeaderList = Array<[name: string, value: string]>;

export interface HpackDecoder {
  /**
   * Decodes one complete header block. Throws HpackError on any malformed input (bad index, bad integer, bad
   * Huffman/EOS padding, table size update above the limit or not at the block start, etc.). `maxListSize`: throws
   * HpackError with `tooLarge = true` if the sum over fields of (name.length + value.length + 32) exceeds it — but only
   * after decoding the whole block, so the dynamic table stays in sync.
   */
  decode(block: Uint8Array, maxListSize: number): HeaderList;
  /**
   * SETTINGS_HEADER_TABLE_SIZE we advertised (the max the peer may use); default 4096. Call it once the peer has
   * acknowledged the SETTINGS frame. Before the peer has sent any dynamic table size update this also becomes the
   * table's current size (the peer's encoder starts at the advertised size); afterwards the current size only shrinks
   * to fit the new limit.
   */
  setMaxTableSize(size: number): void;
}

export interface HpackEncoder {
  /** Encodes a header list into one block. Names must already be lowercase. */
  encode(headers: HeaderList): Buffer;
  /**
   * The peer's SETTINGS_HEADER_TABLE_SIZE. The encoder uses min(size, 4096); when that differs from its current size it
   * evicts now and emits a dynamic table size update at the start of the next block.
   */
  setMaxTableSize(size: number): void;
}

export class HpackError extends Error {
  /** The block decoded fine but its header list exceeds `maxListSize` (the dynamic table is still in sync). */
  readonly tooLarge: boolean;
  constructor(message: string, tooLarge = false) {
    super(message);
    this.name = "HpackError";
    this.tooLarge = tooLarge;
  }
}

export function createHpackDecoder(): HpackDecoder {
  return new Decoder();
}

export function createHpackEncoder(): HpackEncoder {
  return new Encoder();
}

// ---------------------------------------------------------------------------------------------------------------------
// Static table (Appendix A)

const STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];

const STATIC_COUNT = 61;
/** Index 1..61; slot 0 unused. */
const STATIC_NAMES: string[] = ["", ...STATIC_TABLE.map((entry) => entry[0])];
const STATIC_VALUES: string[] = ["", ...STATIC_TABLE.map((entry) => entry[1])];

const DEFAULT_TABLE_SIZE = 4096;
const ENTRY_OVERHEAD = 32;
/** Integers above this are rejected (no legitimate length, index or table size comes close). */
const MAX_INTEGER = 0x7fffffff;
/** Continuation bytes after the prefix; 5 × 7 bits covers MAX_INTEGER. */
const MAX_INTEGER_CONTINUATIONS = 5;

// ---------------------------------------------------------------------------------------------------------------------
// Huffman code (Appendix B)

/**
 * Code lengths for symbols 0..255 and EOS (256). The RFC's code is canonical: sorting the symbols by (length, symbol) and
 * counting up gives exactly the codes listed in Appendix B (e.g. '0' = 00000, 'a' = 00011, EOS = 30 ones), so the
 * lengths determine the whole table.
 */
// biome-ignore format: a 257-entry table
const HUFFMAN_LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];

const HUFFMAN_EOS = 256;
/** Transition flag: the nibble completed a symbol (in bits 16..23). */
const HUFFMAN_EMIT = 0x100;
/** Transition value for a nibble that completes the EOS code. */
const HUFFMAN_FAIL = -1;

/**
 * The decoder is a state machine over the code tree's 256 internal nodes, fed 4 bits at a time:
 * `HUFFMAN_DECODE[state << 4 | nibble]` is next state | HUFFMAN_EMIT | symbol << 16, or HUFFMAN_FAIL. Every code is at
 * least 5 bits long, so one nibble completes at most one symbol. `HUFFMAN_ACCEPT[state]` marks the states a string may
 * end in: the root and the all-ones path down to depth 7 (valid EOS-prefix padding).
 */
const { HUFFMAN_DECODE, HUFFMAN_ACCEPT } = buildHuffmanDecoder();

function buildHuffmanDecoder(): { HUFFMAN_DECODE: Int32Array; HUFFMAN_ACCEPT: Uint8Array } {
  // Canonical code assignment.
  const symbols = HUFFMAN_LENGTHS.map((_, symbol) => symbol).sort((a, b) => HUFFMAN_LENGTHS[a] - HUFFMAN_LENGTHS[b] || a - b);
  const codes = new Array<number>(HUFFMAN_LENGTHS.length);
  let code = 0;
  let length = HUFFMAN_LENGTHS[symbols[0]];
  for (let i = 0; i < symbols.length; i++) {
    const symbolLength = HUFFMAN_LENGTHS[symbols[i]];
    if (i > 0) code = (code + 1) * 2 ** (symbolLength - length);
    length = symbolLength;
    codes[symbols[i]] = code;
  }
  // The tree: children >= 0 are internal nodes, < 0 are leaves (-1 - symbol). Node 0 is the root.
  const unset = 0x7fffffff;
  const children: number[][] = [[unset, unset]];
  for (let symbol = 0; symbol < codes.length; symbol++) {
    const bits = HUFFMAN_LENGTHS[symbol];
    let node = 0;
    for (let i = bits - 1; i >= 0; i--) {
      const bit = Math.floor(codes[symbol] / 2 ** i) & 1;
      if (i === 0) {
        if (children[node][bit] !== unset) throw new Error("HPACK Huffman table is not a prefix code");
        children[node][bit] = -1 - symbol;
      } else {
        let next = children[node][bit];
        if (next === unset) {
          next = children.length;
          children.push([unset, unset]);
          children[node][bit] = next;
        } else if (next < 0) {
          throw new Error("HPACK Huffman table is not a prefix code");
        }
        node = next;
      }
    }
  }
  if (children.length !== 256 || children.some((pair) => pair[0] === unset || pair[1] === unset)) {
    throw new Error("HPACK Huffman table is not a complete code");
  }
  const decode = new Int32Array(256 * 16);
  for (let state = 0; state < 256; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let entry = 0;
      for (let i = 3; i >= 0; i--) {
        const next = children[node][(nibble >> i) & 1];
        if (next >= 0) {
          node = next;
          continue;
        }
        const symbol = -1 - next;
        if (symbol === HUFFMAN_EOS) {
          entry = HUFFMAN_FAIL;
          break;
        }
        entry = HUFFMAN_EMIT | (symbol << 16);
        node = 0;
      }
      decode[(state << 4) | nibble] = entry === HUFFMAN_FAIL ? HUFFMAN_FAIL : entry | node;
    }
  }
  const accept = new Uint8Array(256);
  accept[0] = 1;
  for (let node = 0, depth = 1; depth <= 7; depth++) {
    node = children[node][1];
    accept[node] = 1;
  }
  return { HUFFMAN_DECODE: decode, HUFFMAN_ACCEPT: accept };
}

/** Shared output scratch for Huffman decoding (decoding is synchronous, so one per process is enough). */
let huffmanScratch: Buffer = Buffer.allocUnsafeSlow(4096);

function huffmanDecode(src: Uint8Array, start: number, end: number): string {
  // Shortest code is 5 bits: at most 8/5 symbols per byte.
  const limit = Math.ceil(((end - start) * 8) / 5);
  if (huffmanScratch.length < limit) huffmanScratch = Buffer.allocUnsafeSlow(Math.max(limit, huffmanScratch.length * 2));
  const out = huffmanScratch;
  const table = HUFFMAN_DECODE;
  let state = 0;
  let n = 0;
  for (let i = start; i < end; i++) {
    const byte = src[i];
    let t = table[(state << 4) | (byte >> 4)];
    if (t < 0) throw new HpackError("Huffman string contains EOS");
    if ((t & HUFFMAN_EMIT) !== 0) out[n++] = t >>> 16;
    t = table[((t & 0xff) << 4) | (byte & 0x0f)];
    if (t < 0) throw new HpackError("Huffman string contains EOS");
    if ((t & HUFFMAN_EMIT) !== 0) out[n++] = t >>> 16;
    state = t & 0xff;
  }
  if (HUFFMAN_ACCEPT[state] === 0) throw new HpackError("bad Huffman padding");
  return latin1(out, 0, n);
}

/** Bytes to a latin1 string: a JS loop beats the native call for the short names and values headers mostly are. */
function latin1(buffer: Buffer, start: number, end: number): string {
  switch (end - start) {
    case 0:
      return "";
    case 1:
      return String.fromCharCode(buffer[start]);
    case 2:
      return String.fromCharCode(buffer[start], buffer[start + 1]);
    case 3:
      return String.fromCharCode(buffer[start], buffer[start + 1], buffer[start + 2]);
    case 4:
      return String.fromCharCode(buffer[start], buffer[start + 1], buffer[start + 2], buffer[start + 3]);
    default:
      return buffer.toString("latin1", start, end);
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Decoder

/** Position after the last integer/string read (module state: decoding is synchronous and never re-entered). */
let cursor = 0;

/** Reads an integer with an N-bit prefix (`mask` = 2^N - 1) starting at `pos`, which must be in bounds. */
function readInteger(src: Uint8Array, pos: number, end: number, mask: number): number {
  let value = src[pos++] & mask;
  if (value === mask) {
    let multiplier = 1;
    for (let count = 0; ; count++) {
      if (pos >= end) throw new HpackError("truncated integer");
      if (count === MAX_INTEGER_CONTINUATIONS) throw new HpackError("integer too long");
      const byte = src[pos++];
      value += (byte & 0x7f) * multiplier;
      if (value > MAX_INTEGER) throw new HpackError("integer overflow");
      if (byte < 0x80) break;
      multiplier *= 128;
    }
  }
  cursor = pos;
  return value;
}

function readString(src: Uint8Array, view: Buffer, pos: number, end: number): string {
  if (pos >= end) throw new HpackError("truncated string");
  const huffman = src[pos] >= 0x80;
  const length = readInteger(src, pos, end, 0x7f);
  const start = cursor;
  if (length > end - start) throw new HpackError("truncated string");
  cursor = start + length;
  if (length >= LONG_STRING && length <= 4096) return longString(huffman, view, start, start + length);
  return huffman ? huffmanDecode(src, start, start + length) : latin1(view, start, start + length);
}

/**
 * Long literals a client repeats on every request (a bearer token is sent never-indexed, so it
 * arrives as a literal each time) decode to the same string object as last time: no decoding,
 * and the auth cache's Map lookup finds the string's hash already computed. Keyed by length,
 * checked byte for byte (up to 4 KiB, 64 lengths).
 */
const LONG_STRING = 64;
const longStrings = new Map<number, { bytes: Buffer; huffman: boolean; text: string }>();

function longString(huffman: boolean, view: Buffer, start: number, end: number): string {
  const length = end - start;
  const known = longStrings.get(length);
  if (known !== undefined && known.huffman === huffman && view.compare(known.bytes, 0, length, start, end) === 0) {
    return known.text;
  }
  const text = huffman ? huffmanDecode(view, start, end) : view.toString("latin1", start, end);
  if (longStrings.size >= 64) longStrings.clear();
  longStrings.set(length, { bytes: Buffer.from(view.subarray(start, end)), huffman, text });
  return text;
}

class Decoder implements HpackDecoder {
  /** The advertised SETTINGS_HEADER_TABLE_SIZE: the largest size update the peer may send. */
  private limit = DEFAULT_TABLE_SIZE;
  /** The table's current maximum size. */
  private capacity = DEFAULT_TABLE_SIZE;
  private size = 0;
  private updateSeen = false;
  // Ring buffer of entries; `head` is the newest, dynamic index 1.
  private names: string[] = new Array<string>(16).fill("");
  private values: string[] = new Array<string>(16).fill("");
  private mask = 15;
  private head = 0;
  private count = 0;

  setMaxTableSize(size: number): void {
    checkTableSize(size);
    this.limit = size;
    if (!this.updateSeen || this.capacity > size) {
      this.capacity = size;
      this.evict(size);
    }
  }

  decode(block: Uint8Array, maxListSize: number): HeaderList {
    const src = block;
    const view = Buffer.isBuffer(block) ? block : Buffer.from(block.buffer, block.byteOffset, block.byteLength);
    const end = src.length;
    const list: HeaderList = [];
    let listSize = 0;
    let fieldSeen = false;
    let pos = 0;
    while (pos < end) {
      const first = src[pos];
      let name: string;
      let value: string;
      if (first >= 0x80) {
        // Indexed header field (6.1).
        const index = readInteger(src, pos, end, 0x7f);
        pos = cursor;
        if (index <= STATIC_COUNT) {
          if (index === 0) throw new HpackError("index 0");
          name = STATIC_NAMES[index];
          value = STATIC_VALUES[index];
        } else {
          const slot = this.slot(index);
          name = this.names[slot];
          value = this.values[slot];
        }
      } else if (first >= 0x20 && first < 0x40) {
        // Dynamic table size update (6.3).
        if (fieldSeen) throw new HpackError("dynamic table size update after a header field");
        const size = readInteger(src, pos, end, 0x1f);
        pos = cursor;
        if (size > this.limit) throw new HpackError(`dynamic table size update to ${size} above ${this.limit}`);
        this.capacity = size;
        this.updateSeen = true;
        this.evict(size);
        continue;
      } else {
        // Literal with incremental indexing (6.2.1, 6-bit name index), without indexing (6.2.2)
        // or never indexed (6.2.3) (4-bit name index).
        const indexing = first >= 0x40;
        const index = readInteger(src, pos, end, indexing ? 0x3f : 0x0f);
        pos = cursor;
        name = index === 0 ? readString(src, view, pos, end) : this.nameAt(index);
        if (index === 0) pos = cursor;
        value = readString(src, view, pos, end);
        pos = cursor;
        if (indexing) this.insert(name, value);
      }
      fieldSeen = true;
      listSize += name.length + value.length + ENTRY_OVERHEAD;
      if (listSize <= maxListSize) list.push([name, value]);
    }
    if (listSize > maxListSize) throw new HpackError(`header list of ${listSize} bytes exceeds ${maxListSize}`, true);
    return list;
  }

  /** The ring slot of dynamic index `index` (> 61). */
  private slot(index: number): number {
    const offset = index - STATIC_COUNT - 1;
    if (offset >= this.count) throw new HpackError(`index ${index} beyond the table`);
    return (this.head - offset) & this.mask;
  }

  private nameAt(index: number): string {
    return index <= STATIC_COUNT ? STATIC_NAMES[index] : this.names[this.slot(index)];
  }

  private insert(name: string, value: string): void {
    const entrySize = name.length + value.length + ENTRY_OVERHEAD;
    if (entrySize > this.capacity) {
      this.evict(0);
      return;
    }
    this.evict(this.capacity - entrySize);
    if (this.count === this.names.length) this.grow();
    this.head = (this.head + 1) & this.mask;
    this.names[this.head] = name;
    this.values[this.head] = value;
    this.count++;
    this.size += entrySize;
  }

  /** Drops the oldest entries until the table size is at most `size`. */
  private evict(size: number): void {
    while (this.size > size) {
      const oldest = (this.head - this.count + 1) & this.mask;
      this.size -= this.names[oldest].length + this.values[oldest].length + ENTRY_OVERHEAD;
      this.names[oldest] = "";
      this.values[oldest] = "";
      this.count--;
    }
  }

  private grow(): void {
    const length = this.names.length;
    const names = new Array<string>(length * 2).fill("");
    const values = new Array<string>(length * 2).fill("");
    // Oldest first at 0, newest at count - 1.
    for (let i = 0; i < this.count; i++) {
      const slot = (this.head - this.count + 1 + i) & this.mask;
      names[i] = this.names[slot];
      values[i] = this.values[slot];
    }
    this.names = names;
    this.values = values;
    this.mask = length * 2 - 1;
    this.head = this.count - 1;
  }
}

function checkTableSize(size: number): void {
  if (!Number.isInteger(size) || size < 0 || size > 0xffffffff) throw new RangeError(`bad HPACK table size ${size}`);
}

// ---------------------------------------------------------------------------------------------------------------------
// Encoder

const INDEX = 0;
const NO_INDEX = 1;
const NEVER_INDEX = 2;
type Policy = typeof INDEX | typeof NO_INDEX | typeof NEVER_INDEX;

/** Values this long are never worth a table slot. */
const MAX_INDEXED_VALUE = 512;

/** Headers whose values change on every message: literal without indexing. */
const UNIQUE_PER_MESSAGE = [
  "x-request-id",
  "traceparent",
  "tracestate",
  "content-length",
  "date",
  "grpc-timeout",
  "connect-timeout-ms",
  "x-client-request-id",
  "grpc-message",
];
/** Credentials: literal never indexed, so no intermediary indexes them either. */
const SENSITIVE = ["authorization", "cookie", "set-cookie", "proxy-authorization"];

/** What the encoder knows about one header name. */
interface NameInfo {
  policy: Policy;
  /** Static index of the name's first entry, 0 if none. */
  staticIndex: number;
  /** Static entries with this name, by value (shared by every encoder, never changed). */
  staticValues: Map<string, number> | undefined;
  /** Dynamic table entries with this name, value → insertion sequence number. */
  dynamicValues: Map<string, number>;
  /** Sequence number of the newest dynamic entry with this name, -1 if none. */
  newest: number;
}

/**
 * The static table's names and the names with a policy, built once and shared by every encoder
 * (their dynamicValues stay empty): an encoder holds its own NameInfo only for the names its
 * dynamic table holds, so a connection costs a few hundred bytes here, not 110 Maps (25 KB).
 */
const KNOWN_NAMES: ReadonlyMap<string, NameInfo> = (() => {
  const names = new Map<string, NameInfo>();
  const info = (name: string): NameInfo => {
    let entry = names.get(name);
    if (entry === undefined) {
      entry = { policy: INDEX, staticIndex: 0, staticValues: undefined, dynamicValues: new Map(), newest: -1 };
      names.set(name, entry);
    }
    return entry;
  };
  for (let index = 1; index <= STATIC_COUNT; index++) {
    const entry = info(STATIC_NAMES[index]);
    if (entry.staticIndex === 0) entry.staticIndex = index;
    entry.staticValues ??= new Map();
    if (!entry.staticValues.has(STATIC_VALUES[index])) entry.staticValues.set(STATIC_VALUES[index], index);
  }
  for (const name of UNIQUE_PER_MESSAGE) info(name).policy = NO_INDEX;
  for (const name of SENSITIVE) info(name).policy = NEVER_INDEX;
  return names;
})();

/**
 * Where every encoder writes a block before copying it out: encode() runs to its end without
 * yielding, so one buffer serves all connections instead of 4 KiB off-heap for each.
 */
let encodeScratch: Buffer = Buffer.allocUnsafeSlow(4096);

class Encoder implements HpackEncoder {
  /** The names in this encoder's dynamic table (with their static facts); KNOWN_NAMES has the rest. */
  private readonly info = new Map<string, NameInfo>();
  /** The current maximum size of the table (what the peer's decoder has been told). */
  private capacity = DEFAULT_TABLE_SIZE;
  /** The smallest capacity since the last block, when a size update is pending; -1 if none. */
  private pendingMin = -1;
  private size = 0;
  /** Entries inserted so far; the newest has sequence number `inserted - 1`, dynamic index 62. */
  private inserted = 0;
  // Ring buffer of entries (oldest at `tail`).
  private names: string[] = new Array<string>(16).fill("");
  private values: string[] = new Array<string>(16).fill("");
  private mask = 15;
  private tail = 0;
  private count = 0;
  private out: Buffer = encodeScratch;
  private pos = 0;

  setMaxTableSize(size: number): void {
    checkTableSize(size);
    const capacity = Math.min(size, DEFAULT_TABLE_SIZE);
    if (capacity === this.capacity) return;
    this.capacity = capacity;
    this.pendingMin = this.pendingMin < 0 ? capacity : Math.min(this.pendingMin, capacity);
    this.evict(capacity);
  }

  encode(headers: HeaderList): Buffer {
    this.out = encodeScratch;
    this.pos = 0;
    if (this.pendingMin >= 0) {
      // 4.2: the smallest size since the last block first, then the final one.
      this.reserve(12);
      if (this.pendingMin < this.capacity) this.writeInteger(0x20, 0x1f, this.pendingMin);
      this.writeInteger(0x20, 0x1f, this.capacity);
      this.pendingMin = -1;
    }
    for (let i = 0; i < headers.length; i++) {
      const header = headers[i];
      const name = header[0];
      const value = header[1];
      const info = this.info.get(name) ?? KNOWN_NAMES.get(name);
      let policy: Policy = INDEX;
      if (info !== undefined) {
        if (info.staticValues !== undefined) {
          const index = info.staticValues.get(value);
          if (index !== undefined) {
            this.reserve(6);
            this.writeInteger(0x80, 0x7f, index);
            continue;
          }
        }
        policy = info.policy;
        if (policy === INDEX && info.newest >= 0 && value.length <= MAX_INDEXED_VALUE) {
          const seq = info.dynamicValues.get(value);
          if (seq !== undefined) {
            this.reserve(6);
            this.writeInteger(0x80, 0x7f, this.inserted - seq + STATIC_COUNT);
            continue;
          }
        }
      }
      if (policy === INDEX && value.length > MAX_INDEXED_VALUE) policy = NO_INDEX;
      let nameIndex = 0;
      if (info !== undefined) {
        if (info.staticIndex > 0) nameIndex = info.staticIndex;
        else if (info.newest >= 0) nameIndex = this.inserted - info.newest + STATIC_COUNT;
      }
      this.reserve(18 + (nameIndex === 0 ? name.length : 0) + value.length);
      if (policy === INDEX) {
        this.writeInteger(0x40, 0x3f, nameIndex);
      } else {
        this.writeInteger(policy === NEVER_INDEX ? 0x10 : 0x00, 0x0f, nameIndex);
      }
      if (nameIndex === 0) this.writeString(name);
      this.writeString(value);
      if (policy === INDEX) this.insert(name, value);
    }
    const block = Buffer.allocUnsafe(this.pos);
    this.out.copy(block, 0, 0, this.pos);
    return block;
  }

  private insert(name: string, value: string): void {
    const entrySize = name.length + value.length + ENTRY_OVERHEAD;
    if (entrySize > this.capacity) {
      // 4.4: the table ends up empty and the entry is not added.
      this.evict(0);
      return;
    }
    this.evict(this.capacity - entrySize);
    // Looked up after the eviction, which forgets a name whose last entry it dropped.
    let info = this.info.get(name);
    if (info === undefined) {
      const known = KNOWN_NAMES.get(name);
      info = {
        policy: known?.policy ?? INDEX,
        staticIndex: known?.staticIndex ?? 0,
        staticValues: known?.staticValues,
        dynamicValues: new Map(),
        newest: -1,
      };
      this.info.set(name, info);
    }
    if (this.count === this.names.length) this.grow();
    const slot = (this.tail + this.count) & this.mask;
    this.names[slot] = name;
    this.values[slot] = value;
    this.count++;
    this.size += entrySize;
    const seq = this.inserted++;
    info.dynamicValues.set(value, seq);
    info.newest = seq;
  }

  /** Drops the oldest entries until the table size is at most `size`. */
  private evict(size: number): void {
    while (this.size > size) {
      const slot = this.tail;
      const name = this.names[slot];
      const value = this.values[slot];
      const seq = this.inserted - this.count;
      this.names[slot] = "";
      this.values[slot] = "";
      this.tail = (slot + 1) & this.mask;
      this.count--;
      this.size -= name.length + value.length + ENTRY_OVERHEAD;
      const info = this.info.get(name);
      if (info === undefined) continue;
      if (info.dynamicValues.get(value) === seq) info.dynamicValues.delete(value);
      if (info.newest === seq) {
        // The oldest entry was also the newest with its name: none are left (KNOWN_NAMES keeps its static facts).
        this.info.delete(name);
      }
    }
  }

  private grow(): void {
    const length = this.names.length;
    const names = new Array<string>(length * 2).fill("");
    const values = new Array<string>(length * 2).fill("");
    for (let i = 0; i < this.count; i++) {
      const slot = (this.tail + i) & this.mask;
      names[i] = this.names[slot];
      values[i] = this.values[slot];
    }
    this.names = names;
    this.values = values;
    this.mask = length * 2 - 1;
    this.tail = 0;
  }

  /** Makes room for `bytes` more output bytes. */
  private reserve(bytes: number): void {
    const needed = this.pos + bytes;
    if (needed <= this.out.length) return;
    const out = Buffer.allocUnsafeSlow(Math.max(needed, this.out.length * 2));
    this.out.copy(out, 0, 0, this.pos);
    this.out = out;
    encodeScratch = out;
  }

  /** Writes `value` with the prefix bits `flags` and an N-bit prefix (`mask` = 2^N - 1); at most 6 bytes. */
  private writeInteger(flags: number, mask: number, value: number): void {
    const out = this.out;
    let pos = this.pos;
    if (value < mask) {
      out[pos++] = flags | value;
    } else {
      out[pos++] = flags | mask;
      let rest = value - mask;
      while (rest >= 0x80) {
        out[pos++] = (rest & 0x7f) | 0x80;
        rest = Math.floor(rest / 128);
      }
      out[pos++] = rest;
    }
    this.pos = pos;
  }

  /** A raw (non-Huffman) string literal: length with a 7-bit prefix, then the latin1 bytes. */
  private writeString(text: string): void {
    const length = text.length;
    this.writeInteger(0x00, 0x7f, length);
    const out = this.out;
    let pos = this.pos;
    if (length < 48) {
      for (let i = 0; i < length; i++) out[pos++] = text.charCodeAt(i);
    } else {
      pos += out.write(text, pos, length, "latin1");
    }
    this.pos = pos;
  }
}
