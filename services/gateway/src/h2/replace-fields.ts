import type { HeaderList } from "./hpack.js";

/**
 * Edits a header list in place: drops every field named in `drop` or in `set`, then appends `set`.
 * How a proxied request's fields become what the upstream is sent (another content type, framing
 * headers of another protocol) without a round trip through a header object.
 */
export function replaceFields(list: HeaderList, drop: ReadonlySet<string>, set: HeaderList): void {
  let kept = 0;
  for (let i = 0; i < list.length; i++) {
    const field = list[i] as [string, string];
    const name = field[0];
    if (drop.has(name) || set.some((s) => s[0] === name)) continue;
    list[kept++] = field;
  }
  list.length = kept;
  for (const field of set) list.push([field[0], field[1]]);
}
