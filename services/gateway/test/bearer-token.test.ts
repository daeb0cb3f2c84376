import { describe, expect, it } from "vitest";
import { bearerToken } from "../src/bearer-token.js";

describe("bearerToken", () => {
  it("reads the token of a Bearer header, whatever the scheme's case", () => {
    expect(bearerToken("Bearer abc.def")).toBe("abc.def");
    expect(bearerToken("bearer  abc ")).toBe("abc");
    expect(bearerToken("BEARER x")).toBe("x");
  });

  it("refuses what is not one", () => {
    for (const value of [
      undefined,
      null,
      "",
      "Bearer",
      "Bearer ",
      "Bearer    ",
      "Basic abc",
      "Bearerabc",
      ["Bearer a", "Bearer b"],
    ]) {
      expect(bearerToken(value)).toBeUndefined();
    }
    expect(bearerToken(`Bearer ${"a".repeat(8200)}`)).toBeUndefined();
  });

  it("answers each header for itself when the same one comes again and again (it remembers the last one)", () => {
    const a = `Bearer ${"a".repeat(450)}`;
    const b = `Bearer ${"b".repeat(450)}`;
    for (let i = 0; i < 3; i++) {
      expect(bearerToken(a)).toBe("a".repeat(450));
      expect(bearerToken(a)).toBe("a".repeat(450));
      expect(bearerToken(b)).toBe("b".repeat(450));
      expect(bearerToken("Basic x")).toBeUndefined();
      expect(bearerToken("Bearer  ")).toBeUndefined();
      expect(bearerToken("Bearer  ")).toBeUndefined();
      expect(bearerToken(`${a.slice(0, 100)}${a.slice(100)}`)).toBe("a".repeat(450));
    }
  });
});
