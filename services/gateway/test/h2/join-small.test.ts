import { describe, expect, it } from "vitest";
import { COPY_LIMIT, joinSmall } from "../../src/h2/join-small.js";

const total = (list: Buffer[]) => list.reduce((n, b) => n + b.length, 0);

describe("joinSmall (what a session's flush writes)", () => {
  it("joins small frames into one buffer", () => {
    const out = [Buffer.from("header-9b"), Buffer.from("a"), Buffer.from("bc")];
    const chunks = joinSmall(out, total(out));
    expect(chunks).toHaveLength(1);
    expect(chunks[0]?.toString()).toBe("header-9babc");
  });

  it("writes large payloads as they are, without copying them, and keeps the order", () => {
    const big1 = Buffer.alloc(16_384, 1);
    const big2 = Buffer.alloc(COPY_LIMIT, 2);
    const out = [Buffer.alloc(9, 3), big1, Buffer.alloc(9, 4), Buffer.alloc(4, 5), big2, Buffer.alloc(9, 6)];
    const chunks = joinSmall(out, total(out));
    expect(chunks.map((c) => c.length)).toEqual([9, 16_384, 13, COPY_LIMIT, 9]);
    // The very buffers the streams wrote: a 64 KiB body costs no copy (and no new ArrayBuffer) on its way out.
    expect(chunks[1]).toBe(big1);
    expect(chunks[3]).toBe(big2);
    expect(Buffer.concat(chunks).equals(Buffer.concat(out))).toBe(true);
  });
});
