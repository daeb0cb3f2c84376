// Test helper (not a test): arbitrary RPC errors and metadata for property-based tests, and how to compare them.
import { Code, ConnectError } from "@connectrpc/connect";
import fc from "fast-check";
import { expect } from "vitest";

/** Messages with any Unicode text (well-formed: UTF-8 can carry it), controls and percent signs included. */
const messageText = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 30 }),
  fc.string({ unit: fc.constantFrom("%", "\r", "\n", " ", "a", "é", "\u0000", "😀", ":", "grpc-status: 0"), maxLength: 12 }),
);

/** Any error code but OK, any message, and a few details. */
export const connectErrorArbitrary: fc.Arbitrary<ConnectError> = fc
  .record({
    code: fc.constantFrom(...Object.values(Code).filter((value): value is Code => typeof value === "number")),
    message: messageText,
    details: fc.array(
      fc.record({ type: fc.stringMatching(/^[a-z]{1,8}(\.[A-Za-z]{1,8}){1,3}$/), value: fc.uint8Array({ maxLength: 20 }) }),
      { maxLength: 2 },
    ),
  })
  .map(({ code, message, details }) => {
    const error = new ConnectError(message, code);
    error.details.push(...details);
    return error;
  });

/** Custom metadata as an upstream sends it: lowercase names, visible ASCII values (inner spaces), one or more each. */
export const metadataArbitrary: fc.Arbitrary<Record<string, string[]>> = fc.dictionary(
  // Names that look like the status too.
  fc.oneof(fc.stringMatching(/^x-[a-z0-9-]{1,12}$/), fc.constantFrom("x-grpc-status", "x-error")),
  fc.array(fc.stringMatching(/^[!-~]([ -~]{0,20}[!-~])?$/), { minLength: 1, maxLength: 3 }),
  { maxKeys: 4 },
);

/** Both undefined, or the same code, message and details. */
export function expectSameError(actual: ConnectError | undefined, expected: ConnectError | undefined): void {
  if (expected === undefined) {
    expect(actual).toBeUndefined();
    return;
  }
  expect(actual?.code).toBe(expected.code);
  expect(actual?.rawMessage).toBe(expected.rawMessage);
  const details = (error: ConnectError | undefined) =>
    error?.details.map((detail) => ("desc" in detail ? detail : { type: detail.type, value: Buffer.from(detail.value) }));
  expect(details(actual)).toEqual(details(expected));
}
