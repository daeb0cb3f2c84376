/**
 * The fields of a gRPC-Web trailer frame's payload: one `name: value` per line (CRLF, or LF from a
 * lenient server), names lowercased, the first of a repeated name kept. Lines without a name are skipped.
 * No prototype: a field named `__proto__` or `constructor` is just a field.
 */
export function parseTrailerBlock(block: Uint8Array): Record<string, string> {
  const fields = Object.create(null) as Record<string, string>;
  for (const line of Buffer.from(block.buffer, block.byteOffset, block.byteLength).toString("utf8").split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (name !== "" && !(name in fields)) fields[name] = line.slice(colon + 1).trim();
  }
  return fields;
}
