import { describe, expect, it } from "vitest";
import { createEndOfStreamSniffer } from "../src/envelope-limit.js";
import { envelope } from "../src/error-response.js";

const trailerFrame = (text: string) => envelope(0x80, Buffer.from(text, "utf8"));

describe("createEndOfStreamSniffer (gRPC-Web)", () => {
  // Found by envelope-limit.fuzz.test.ts (seed 20261204): trailer metadata named x-grpc-status made
  // the access log and metrics record a successful call as `canceled`.
  it("reads the grpc-status field, not another field that contains the words", () => {
    const cases: Array<[string, string]> = [
      ["x-grpc-status: 1\r\nx-grpc-status: !\r\ngrpc-status: 0\r\n", "ok"],
      ["grpc-message: grpc-status: 0\r\ngrpc-status: 13\r\n", "internal"],
      ["Grpc-Status: 5\r\n", "not_found"],
      ["grpc-status: x\r\n", "undefined"],
      ["x-grpc-status: 0\r\n", "undefined"],
    ];
    for (const [trailers, code] of cases) {
      const sniffer = createEndOfStreamSniffer("grpc-web");
      sniffer.push(trailerFrame(trailers));
      expect(String(sniffer.code()), trailers).toBe(code);
    }
  });
});
