import { describe, expect, it } from "vitest";
import { createMemoryRateLimiter } from "../src/rate-limiter.js";

const perMinute = (key: string) => ({ key, count: 2, periodMs: 60_000 });

describe("in-memory rate limiter", () => {
  it("keeps a limited client limited while another rotates through more addresses than it holds", async () => {
    const limiter = createMemoryRateLimiter({ maxKeys: 1000 });
    try {
      const victim = [perMinute("/p|ip|203.0.113.7")];
      expect(limiter.take(victim)).toBe(0);
      expect(limiter.take(victim)).toBe(0);
      expect(limiter.take(victim)).toBeGreaterThan(0);
      // An IPv6 client with a fresh address per call, five times as many as the limiter holds.
      for (let i = 0; i < 5000; i++) {
        expect(limiter.take([perMinute(`/p|ip|2001:db8::${i.toString(16)}`)])).toBe(0);
        // The limited client keeps trying (and keeps being refused).
        if (i % 100 === 0) expect(limiter.take(victim)).toBeGreaterThan(0);
      }
      expect(limiter.take(victim)).toBeGreaterThan(0);
      // The rotating client's own addresses are limited while they are held.
      const recent = [perMinute("/p|ip|2001:db8::1387")];
      expect(limiter.take(recent)).toBe(0);
      expect(limiter.take(recent)).toBeGreaterThan(0);
    } finally {
      await limiter.close();
    }
  });

  it("refuses a size that is not a positive integer, naming it", () => {
    expect(() => createMemoryRateLimiter({ maxKeys: 0 })).toThrow(/maxKeys must be a positive integer, got 0/);
  });
});
