import { codeToString } from "@connectrpc/connect/protocol-connect";
import fc from "fast-check";
import { describe, expect } from "vitest";
import { createEndOfStreamSniffer, createEnvelopeLimit } from "../src/envelope-limit.js";
import { createEnvelopeReader } from "../src/envelope-reader.js";
import { connectEndStream, grpcStatusTrailers, grpcWebTrailerFrame } from "../src/error-response.js";
import { cuts, envelopeBytes, envelopedMessage, envelopeLikeBytes, split } from "./test-chunks.js";
import { itHolds } from "./test-fuzz.js";
import { connectErrorArbitrary, metadataArbitrary } from "./test-rpc-arbitraries.js";

describe("createEnvelopeLimit", () => {
  itHolds(
    "on any bytes and chunking it breaks exactly where the buffering reader does, with the same declared size",
    fc.property(envelopeLikeBytes, fc.nat(400), cuts, (input, maxBytes, at) => {
      const reader = createEnvelopeReader(maxBytes, () => {});
      const readerBroke = !reader.push(Buffer.from(input));
      const limit = createEnvelopeLimit(maxBytes);
      let limitBroke = false;
      for (const chunk of split(input, at)) {
        if (!limit.push(chunk)) {
          limitBroke = true;
          break;
        }
      }
      expect(limitBroke).toBe(readerBroke);
      if (readerBroke) expect(limit.declared).toBe(reader.declared);
    }),
  );
});

const protocol = fc.constantFrom("connect", "grpc-web") as fc.Arbitrary<"connect" | "grpc-web">;

describe("createEndOfStreamSniffer", () => {
  itHolds(
    "finds the status of any Connect or gRPC-Web stream, however it is chunked",
    fc.property(
      protocol,
      fc.array(envelopedMessage, { maxLength: 5 }),
      fc.option(connectErrorArbitrary),
      metadataArbitrary,
      cuts,
      (name, messages, error, metadata, at) => {
        // The end-stream message (Connect flag 0x02) or trailer frame (gRPC-Web 0x80) comes last.
        const endFlag = name === "connect" ? 0x02 : 0x80;
        const end =
          name === "connect"
            ? connectEndStream(error ?? undefined, metadata)
            : grpcWebTrailerFrame({ ...metadata, ...grpcStatusTrailers(error ?? undefined) });
        const body = Buffer.concat([envelopeBytes(messages.map(({ flags, data }) => ({ flags: flags & ~endFlag, data }))), end]);
        const sniffer = createEndOfStreamSniffer(name);
        for (const chunk of split(body, at)) sniffer.push(chunk);
        expect(sniffer.code()).toBe(error ? codeToString(error.code) : "ok");
      },
    ),
  );

  itHolds(
    "arbitrary bytes never throw, and the status read does not depend on the chunking",
    fc.property(protocol, fc.uint8Array({ maxLength: 400 }), cuts, (protocol, input, at) => {
      const whole = createEndOfStreamSniffer(protocol);
      whole.push(input);
      const chunked = createEndOfStreamSniffer(protocol);
      for (const chunk of split(input, at)) chunked.push(chunk);
      expect(chunked.code()).toBe(whole.code());
    }),
  );
});
