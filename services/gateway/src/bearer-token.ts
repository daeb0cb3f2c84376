/**
 * The last header parsed and its token. A client sends the same `Authorization` on every call, and
 * its HPACK literal decodes to the same string each time (h2/hpack.ts): handing back the same token
 * string, not a new slice of it, lets the auth cache's Map lookup reuse the hash V8 stored on it
 * instead of hashing several hundred characters per call.
 */
let lastValue: string | undefined;
let lastToken: string | undefined;

/** The token of an `Authorization: Bearer <token>` header; undefined when absent or malformed. */
export function bearerToken(value: string | string[] | null | undefined): string | undefined {
  if (typeof value !== "string" || value.length > 8192) return undefined;
  if (value === lastValue) return lastToken;
  if (value.length < 8 || !/^bearer /i.test(value)) return undefined;
  const trimmed = value.slice(7).trim();
  const token = trimmed === "" ? undefined : trimmed;
  lastValue = value;
  lastToken = token;
  return token;
}
