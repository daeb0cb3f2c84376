import { describe, expect, it } from "vitest";
import { ClosedStreams } from "../../src/h2/closed-streams.js";
import { usedBytes } from "./used-bytes.js";

describe("ClosedStreams", () => {
  it("remembers the last 256 closed streams and who closed each, across its growth and wrap-around", () => {
    const closed = new ClosedStreams();
    // Client stream ids 1, 3, 5, …; every third one reset by this side.
    const ids = Array.from({ length: 1000 }, (_, i) => 2 * i + 1);
    for (const [i, id] of ids.entries()) {
      closed.add(id, i % 3 === 0);
      // Everything closed so far, up to 256 back, is remembered right away.
      if (i < 300) {
        for (let j = Math.max(0, i - 255); j <= i; j += 17) {
          expect(closed.find(ids[j] as number)).toBe(j % 3 === 0 ? "reset-here" : "closed");
        }
      }
    }
    for (let j = 1000 - 256; j < 1000; j++) expect(closed.find(ids[j] as number)).toBe(j % 3 === 0 ? "reset-here" : "closed");
    expect(closed.find(ids[1000 - 257] as number)).toBeUndefined();
    expect(closed.find(2001)).toBeUndefined();
  });

  it("costs a connection that closed a few streams little: 2,000 rings of 8 closed streams hold under 200 bytes each", () => {
    const before = usedBytes();
    const rings = Array.from({ length: 2000 }, () => {
      const ring = new ClosedStreams();
      for (let id = 1; id <= 15; id += 2) ring.add(id, id === 7);
      return ring;
    });
    const perRing = (usedBytes() - before) / rings.length;
    expect(perRing).toBeLessThan(200);
    expect(rings[1999]?.find(7)).toBe("reset-here");
    expect(rings[0]?.find(15)).toBe("closed");
  });
});
