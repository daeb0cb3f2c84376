/** Longest password accepted, in UTF-8 bytes; checked before any hashing. */
export const MAX_PASSWORD_BYTES = 1024;
export const MIN_PASSWORD_LENGTH = 12;

// Long passwords people still pick; refused whatever their length.
const COMMON = new Set([
  "123456789012",
  "1234567890123",
  "12345678901234",
  "password1234",
  "password12345",
  "passwordpassword",
  "qwertyuiopasdf",
  "qwertyuiop123",
  "iloveyou1234",
  "abcdefghijkl",
  "aaaaaaaaaaaa",
  "letmeinletmein",
  "administrator",
  "welcome12345",
]);

/** Why `password` may not be used, or undefined when it may. `email` is the owner's address. */
export function passwordProblem(password: string, email?: string): string | undefined {
  if (Buffer.byteLength(password, "utf8") > MAX_PASSWORD_BYTES) return `must be at most ${MAX_PASSWORD_BYTES} bytes`;
  const length = [...password].length;
  if (length < MIN_PASSWORD_LENGTH) return `must be at least ${MIN_PASSWORD_LENGTH} characters (has ${length})`;
  const lower = password.toLowerCase();
  if (new Set(lower).size < 4) return "uses too few different characters";
  if (COMMON.has(lower)) return "is one of the most common passwords";
  if (email) {
    const local = email.slice(0, email.lastIndexOf("@"));
    if (lower === email || (local.length >= 4 && lower.includes(local))) return "must not contain your email address";
  }
  return undefined;
}
