import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { rateLimitedError } from "../src/error-response.js";

describe("rateLimitedError", () => {
  // Found by error-response.fuzz.test.ts (seed 20261204): 5e-324 ms threw "invalid int32" while
  // encoding the RetryInfo detail, so a fractional wait turned a rate-limit answer into an internal error.
  it("announces a fractional wait as the next whole millisecond", () => {
    for (const [waitMs, whole] of [
      [5e-324, 1],
      [1500.5, 1501],
      [999.0001, 1000],
    ] as const) {
      const error = rateLimitedError(waitMs, "1/s per user");
      const expected = rateLimitedError(whole, "1/s per user");
      expect(error.code).toBe(Code.ResourceExhausted);
      expect(error.metadata.get("retry-after")).toBe(expected.metadata.get("retry-after"));
      expect(error.details).toEqual(expected.details);
    }
  });
});
