// Property-based tests of how the gateway tells a call's protocol from its content type (`npm run fuzz` runs them longer).
import fc from "fast-check";
import { describe, expect } from "vitest";
import { guessProtocol, protocolFromContentType, protocols, supportedContentTypes } from "../src/rpc-protocol.js";
import { itHolds } from "./test-fuzz.js";

const known = new Set(Object.values(protocols));

/** A content type written as clients write them: any letter case, spaces, and parameters after a `;`. */
const sloppy = fc
  .record({
    type: fc.constantFrom(...supportedContentTypes),
    upper: fc.array(fc.boolean(), { maxLength: 40 }),
    before: fc.constantFrom("", " ", "\t"),
    after: fc.constantFrom("", " "),
    parameters: fc.constantFrom("", ";", "; charset=utf-8", ";charset=UTF-8; q=1", "; proto=x;y"),
  })
  .map(({ type, upper, before, after, parameters }) => {
    const cased = [...type].map((c, i) => (upper[i] ? c.toUpperCase() : c)).join("");
    return { type, written: `${before}${cased}${after}${parameters}` };
  });

describe("protocolFromContentType", () => {
  itHolds(
    "reads every supported content type however it is cased, spaced or parameterised",
    fc.property(sloppy, ({ type, written }) => {
      const protocol = protocolFromContentType(written);
      expect(protocol).toBe(protocolFromContentType(type));
      expect(known.has(protocol as never)).toBe(true);
    }),
  );

  itHolds(
    "any string is either a known protocol or none, and an error can always be answered in some protocol",
    fc.property(
      fc.oneof(
        fc.string({ maxLength: 60 }),
        sloppy.map(({ written }) => `x${written}`),
      ),
      (written) => {
        const protocol = protocolFromContentType(written);
        if (protocol !== undefined) expect(known.has(protocol)).toBe(true);
        expect(known.has(guessProtocol(written))).toBe(true);
      },
    ),
  );
});
