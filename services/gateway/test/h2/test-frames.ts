// Test helper (not a test): splits the bytes a raw HTTP/2 peer received into frames.

export interface ReceivedFrame {
  type: number;
  flags: number;
  /** The stream id without the reserved bit. */
  id: number;
  payload: Buffer;
}

/** The complete frames at the start of `buffer`, and the bytes of the incomplete one after them. */
export function readFrames(buffer: Buffer): { frames: ReceivedFrame[]; rest: Buffer } {
  const frames: ReceivedFrame[] = [];
  let offset = 0;
  for (;;) {
    if (buffer.length - offset < 9) break;
    const end = offset + 9 + buffer.readUIntBE(offset, 3);
    if (end > buffer.length) break;
    frames.push({
      type: buffer[offset + 3] as number,
      flags: buffer[offset + 4] as number,
      id: buffer.readUInt32BE(offset + 5) & 0x7fffffff,
      payload: buffer.subarray(offset + 9, end),
    });
    offset = end;
  }
  return { frames, rest: buffer.subarray(offset) };
}
