import { afterEach, describe, expect, it, vi } from "vitest";
import { createEnvelopeReader } from "../src/envelope-reader.js";
import { envelope } from "../src/error-response.js";

afterEach(() => {
  vi.restoreAllMocks();
});

/** Bytes of new Buffers made while `run` runs (Buffer.allocUnsafe and Buffer.concat). */
function bytesAllocated(run: () => void): number {
  let bytes = 0;
  const allocUnsafe = Buffer.allocUnsafe;
  const concat = Buffer.concat;
  vi.spyOn(Buffer, "allocUnsafe").mockImplementation((size: number) => {
    bytes += size;
    return allocUnsafe(size);
  });
  vi.spyOn(Buffer, "concat").mockImplementation((list: readonly Uint8Array[], length?: number) => {
    const out = concat(list, length);
    bytes += out.length;
    return out;
  });
  run();
  vi.restoreAllMocks();
  return bytes;
}

describe("envelope reader", () => {
  it("assembles a message of many chunks with one copy of it, not one per chunk", () => {
    const message = Buffer.alloc(2 * 1024 * 1024);
    for (let i = 0; i < message.length; i++) message[i] = i % 253;
    const wire = Buffer.concat([envelope(0, message), envelope(1, Buffer.from("next"))]);
    const received: { flags: number; data: Buffer }[] = [];
    const reader = createEnvelopeReader(4 * 1024 * 1024, (flags, data) => received.push({ flags, data: Buffer.from(data) }));
    const chunks: Buffer[] = [];
    for (let i = 0; i < wire.length; i += 4096) chunks.push(wire.subarray(i, i + 4096));
    const copied = bytesAllocated(() => {
      for (const chunk of chunks) expect(reader.push(chunk)).toBe(true);
    });
    expect(received).toHaveLength(2);
    expect(received[0]?.data.equals(message)).toBe(true);
    expect(received[1]).toEqual({ flags: 1, data: Buffer.from("next") });
    expect(reader.buffered).toBe(0);
    // Concatenating per chunk would copy about 512 × 1 MiB; assembled once it is the message's size.
    expect(copied).toBeLessThan(2 * message.length);
  });

  it("delivers envelopes split anywhere, header bytes included, and several in one chunk", () => {
    const wire = Buffer.concat([envelope(0, Buffer.from("a")), envelope(0, Buffer.alloc(0)), envelope(0, Buffer.from("xyz"))]);
    for (let split = 0; split <= wire.length; split++) {
      const got: string[] = [];
      const reader = createEnvelopeReader(100, (_flags, data) => got.push(data.toString()));
      reader.push(wire.subarray(0, split));
      reader.push(wire.subarray(split));
      expect(got, `split at ${split}`).toEqual(["a", "", "xyz"]);
    }
  });

  it("refuses an envelope that declares more than the limit from its prefix, holding nothing", () => {
    const reader = createEnvelopeReader(10, () => {});
    expect(reader.push(Buffer.from([0, 0, 0, 0]))).toBe(true);
    expect(reader.push(Buffer.from([11, 1, 2]))).toBe(false);
    expect(reader.declared).toBe(11);
    expect(reader.buffered).toBe(0);
  });
});
