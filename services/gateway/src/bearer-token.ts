/** The token of an `Authorization: Bearer <token>` header; undefined when absent or malformed. */
export function bearerToken(value: string | string[] | null | undefined): string | undefined {
  if (typeof value !== "string" || value.length > 8192) return undefined;
  if (value.length < 8 || !/^bearer /i.test(value)) return undefined;
  const token = value.slice(7).trim();
  return token === "" ? undefined : token;
}
