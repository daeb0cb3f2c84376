// HTTP/2 wire constants (RFC 9113) and the 9-byte frame header.

export const FrameType = {
  data: 0x0,
  headers: 0x1,
  priority: 0x2,
  rstStream: 0x3,
  settings: 0x4,
  pushPromise: 0x5,
  ping: 0x6,
  goaway: 0x7,
  windowUpdate: 0x8,
  continuation: 0x9,
} as const;

export const FrameFlag = {
  endStream: 0x1,
  ack: 0x1,
  endHeaders: 0x4,
  padded: 0x8,
  priority: 0x20,
} as const;

/** Error codes of RST_STREAM and GOAWAY (the same numbers as node:http2's `NGHTTP2_*` constants). */
export const H2Error = {
  noError: 0x0,
  protocolError: 0x1,
  internalError: 0x2,
  flowControlError: 0x3,
  settingsTimeout: 0x4,
  streamClosed: 0x5,
  frameSizeError: 0x6,
  refusedStream: 0x7,
  cancel: 0x8,
  compressionError: 0x9,
  connectError: 0xa,
  enhanceYourCalm: 0xb,
} as const;

export const SettingId = {
  headerTableSize: 0x1,
  enablePush: 0x2,
  maxConcurrentStreams: 0x3,
  initialWindowSize: 0x4,
  maxFrameSize: 0x5,
  maxHeaderListSize: 0x6,
} as const;

export const CLIENT_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
export const DEFAULT_WINDOW = 65_535;
export const MAX_WINDOW = 2 ** 31 - 1;
export const DEFAULT_MAX_FRAME = 16_384;

/** A frame: header and payload in one buffer. */
export function frame(type: number, flags: number, streamId: number, payload?: Uint8Array): Buffer {
  const length = payload === undefined ? 0 : payload.length;
  const out = Buffer.allocUnsafe(9 + length);
  writeFrameHeader(out, 0, length, type, flags, streamId);
  if (payload !== undefined) out.set(payload, 9);
  return out;
}

export function writeFrameHeader(
  out: Buffer,
  offset: number,
  length: number,
  type: number,
  flags: number,
  streamId: number,
): void {
  out[offset] = length >>> 16;
  out[offset + 1] = (length >>> 8) & 0xff;
  out[offset + 2] = length & 0xff;
  out[offset + 3] = type;
  out[offset + 4] = flags;
  out.writeUInt32BE(streamId, offset + 5);
}

/** A frame whose payload is 32-bit words (RST_STREAM, WINDOW_UPDATE, GOAWAY without debug data). */
export function wordsFrame(type: number, flags: number, streamId: number, ...words: number[]): Buffer {
  const out = Buffer.allocUnsafe(9 + 4 * words.length);
  writeFrameHeader(out, 0, 4 * words.length, type, flags, streamId);
  for (let i = 0; i < words.length; i++) out.writeUInt32BE(words[i] as number, 9 + 4 * i);
  return out;
}

/** A SETTINGS frame with the given (id, value) pairs. */
export function settingsFrame(settings: ReadonlyArray<readonly [number, number]>, ack = false): Buffer {
  const out = Buffer.allocUnsafe(9 + 6 * settings.length);
  writeFrameHeader(out, 0, 6 * settings.length, FrameType.settings, ack ? FrameFlag.ack : 0, 0);
  settings.forEach(([id, value], i) => {
    out.writeUInt16BE(id, 9 + 6 * i);
    out.writeUInt32BE(value, 11 + 6 * i);
  });
  return out;
}
