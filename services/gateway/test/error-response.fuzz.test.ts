// Property-based tests of the errors and end-of-stream frames the gateway writes (`npm run fuzz` runs them longer).
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { Code } from "@connectrpc/connect";
import { endStreamFromJson } from "@connectrpc/connect/protocol-connect";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import { trailerParse } from "@connectrpc/connect/protocol-grpc-web";
import fc from "fast-check";
import { describe, expect } from "vitest";
import { connectEndStream, grpcStatusTrailers, grpcWebTrailerFrame, rateLimitedError } from "../src/error-response.js";
import { itHolds } from "./test-fuzz.js";
import { connectErrorArbitrary, expectSameError, metadataArbitrary } from "./test-rpc-arbitraries.js";

/** The flags and data of a single envelope, checking its length prefix. */
function unwrap(envelope: Buffer): { flags: number; data: Buffer } {
  expect(envelope.readUInt32BE(1)).toBe(envelope.length - 5);
  return { flags: envelope[0] as number, data: envelope.subarray(5) };
}

describe("end-of-stream messages and trailers, read back by connect-es", () => {
  itHolds(
    "a Connect end-stream message carries any error and metadata unchanged",
    fc.property(fc.option(connectErrorArbitrary), metadataArbitrary, (error, metadata) => {
      const { flags, data } = unwrap(connectEndStream(error ?? undefined, metadata));
      expect(flags).toBe(0x02);
      const parsed = endStreamFromJson(data);
      expectSameError(parsed.error, error ?? undefined);
      for (const [name, values] of Object.entries(metadata)) expect(parsed.metadata.get(name)).toBe(values.join(", "));
    }),
  );

  itHolds(
    "a gRPC-Web trailer frame carries any status and metadata unchanged",
    fc.property(fc.option(connectErrorArbitrary), metadataArbitrary, (error, metadata) => {
      const { flags, data } = unwrap(grpcWebTrailerFrame({ ...metadata, ...grpcStatusTrailers(error ?? undefined) }));
      expect(flags).toBe(0x80);
      const trailers = trailerParse(data);
      expectSameError(findTrailerError(trailers), error ?? undefined);
      for (const [name, values] of Object.entries(metadata)) expect(trailers.get(name)).toBe(values.join(", "));
    }),
  );
});

/** google.rpc.RetryInfo { google.protobuf.Duration retry_delay = 1 } → milliseconds. */
function retryDelayMs(value: Uint8Array): number {
  const info = new BinaryReader(value);
  expect(info.tag()).toEqual([1, 2]);
  const duration = new BinaryReader(info.bytes());
  let ms = 0;
  while (duration.pos < duration.len) {
    const [field] = duration.tag();
    if (field === 1) ms += Number(duration.int64()) * 1000;
    else ms += duration.int32() / 1_000_000;
  }
  return ms;
}

describe("rateLimitedError", () => {
  itHolds(
    "for any wait it says when to retry: retry-after in whole seconds, RetryInfo to the millisecond, never sooner than the wait",
    fc.property(fc.oneof(fc.nat(100_000_000), fc.double({ min: 0, max: 1e8, noNaN: true })), (waitMs) => {
      const error = rateLimitedError(waitMs, "1/s per user");
      expect(error.code).toBe(Code.ResourceExhausted);
      const retryAfter = Number(error.metadata.get("retry-after"));
      expect(retryAfter).toBe(Math.max(1, Math.ceil(waitMs / 1000)));
      const detail = error.details[0] as { type: string; value: Uint8Array };
      expect(detail.type).toBe("google.rpc.RetryInfo");
      // The wait rounded up to the millisecond.
      expect(retryDelayMs(detail.value)).toBe(Math.ceil(waitMs));
    }),
  );
});
