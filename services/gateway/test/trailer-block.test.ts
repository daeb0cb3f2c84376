import { describe, expect, it } from "vitest";
import { parseTrailerBlock } from "../src/trailer-block.js";

const block = (text: string) => new TextEncoder().encode(text);

describe("parseTrailerBlock", () => {
  it("reads a gRPC-Web trailer frame's fields, names lowercased, values trimmed", () => {
    expect({ ...parseTrailerBlock(block("Grpc-Status: 5\r\ngrpc-message: no%20such%20user\r\n")) }).toEqual({
      "grpc-status": "5",
      "grpc-message": "no%20such%20user",
    });
  });

  it("keeps the first of a repeated field, and reads LF-only lines", () => {
    expect(parseTrailerBlock(block("grpc-status: 0\ngrpc-status: 13\n"))["grpc-status"]).toBe("0");
  });

  it("does not take a field whose name only ends with grpc-status, nor a line without a name", () => {
    const fields = parseTrailerBlock(block("x-grpc-status: 7\r\n: 3\r\nnonsense\r\n"));
    expect(fields["grpc-status"]).toBeUndefined();
    expect(Object.keys(fields)).toEqual(["x-grpc-status"]);
  });

  it("treats __proto__ and constructor as plain fields", () => {
    const fields = parseTrailerBlock(block("__proto__: x\r\nconstructor: y\r\n"));
    expect(Object.entries(fields)).toEqual([
      ["__proto__", "x"],
      ["constructor", "y"],
    ]);
  });

  it("reads a view into a larger buffer by its own bytes only", () => {
    const whole = block("xxgrpc-status: 4\r\nyy");
    expect(parseTrailerBlock(whole.subarray(2, 18))["grpc-status"]).toBe("4");
  });
});
