import type { HttpBinding } from "./http-rule.js";

/** What a request's method and path meet among the REST bindings. */
export type PathMatch =
  | { readonly kind: "found"; readonly binding: HttpBinding /** Per template variable, decoded. */; readonly values: string[] }
  /** The path is bound, but not for this method: HTTP 405 with `allow`. */
  | { readonly kind: "method"; readonly allow: string[] }
  | { readonly kind: "none" }
  /** The path cannot be decoded (a bad percent-escape). */
  | { readonly kind: "bad"; readonly message: string };

export interface PathMatcher {
  match(httpMethod: string, path: string): PathMatch;
  /** True when `path` starts with the first literal segment of some binding (`/v1`, `/v1/…`): it is the REST API's, never the web app's. */
  owns(path: string): boolean;
}

interface Node {
  readonly literals: Map<string, Node>;
  single: Node | undefined;
  multi: Node | undefined;
  /** verb → HTTP method → binding, for templates that end here. */
  readonly ends: Map<string, Map<string, HttpBinding>>;
}

const newNode = (): Node => ({ literals: new Map(), single: undefined, multi: undefined, ends: new Map() });

function decodeLiteral(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** Decodes a segment of a multi-segment variable, keeping `%2F` as sent (the reserved expansion of RFC 6570). */
function decodeKeepingSlash(segment: string): string {
  return segment
    .split(/%2F/i)
    .map((part) => decodeURIComponent(part))
    .join("%2F");
}

/**
 * Compiles the bindings into a segment trie once (literal children in a map, `*` and `**` edges),
 * so a request is matched by walking its path once, literals before wildcards, with backtracking
 * only where a literal and a wildcard both continue.
 */
export function createPathMatcher(bindings: readonly HttpBinding[]): PathMatcher {
  const root = newNode();
  const prefixes = new Set<string>();
  for (const binding of bindings) {
    let node = root;
    const first = binding.template.segments[0];
    if (first?.kind === "literal") prefixes.add(decodeLiteral(first.value));
    for (const segment of binding.template.segments) {
      if (segment.kind === "literal") {
        const value = decodeLiteral(segment.value);
        let next = node.literals.get(value);
        if (next === undefined) {
          next = newNode();
          node.literals.set(value, next);
        }
        node = next;
      } else if (segment.kind === "single") {
        node.single ??= newNode();
        node = node.single;
      } else {
        node.multi ??= newNode();
        node = node.multi;
      }
    }
    let byMethod = node.ends.get(binding.template.verb);
    if (byMethod === undefined) {
      byMethod = new Map();
      node.ends.set(binding.template.verb, byMethod);
    }
    byMethod.set(binding.httpMethod, binding);
  }

  /** Depth-first: `starts[k]` is the path segment where template segment k began. */
  const search = (
    node: Node,
    segs: readonly string[],
    at: number,
    verb: string,
    httpMethod: string,
    starts: number[],
    allow: Set<string>,
  ): HttpBinding | undefined => {
    if (at === segs.length) {
      const byMethod = node.ends.get(verb);
      if (byMethod !== undefined) {
        const found = byMethod.get(httpMethod);
        if (found !== undefined) return found;
        for (const m of byMethod.keys()) allow.add(m);
      }
    } else {
      const segment = segs[at] as string;
      const literal = node.literals.get(segment);
      if (literal !== undefined) {
        starts.push(at);
        const found = search(literal, segs, at + 1, verb, httpMethod, starts, allow);
        if (found !== undefined) return found;
        starts.pop();
      }
      if (node.single !== undefined && segment !== "") {
        starts.push(at);
        const found = search(node.single, segs, at + 1, verb, httpMethod, starts, allow);
        if (found !== undefined) return found;
        starts.pop();
      }
    }
    if (node.multi !== undefined) {
      // `**` takes the rest of the path (possibly nothing) and is always last.
      starts.push(at);
      const found = search(node.multi, segs, segs.length, verb, httpMethod, starts, allow);
      if (found !== undefined) return found;
      starts.pop();
    }
    return undefined;
  };

  return {
    match(httpMethod, path) {
      const raw = path === "/" ? [] : path.slice(1).split("/");
      const attempts: { segs: string[]; verb: string }[] = [];
      const last = raw[raw.length - 1];
      const colon = last === undefined ? -1 : last.lastIndexOf(":");
      if (colon >= 0)
        attempts.push({ segs: [...raw.slice(0, -1), (last as string).slice(0, colon)], verb: last?.slice(colon + 1) ?? "" });
      attempts.push({ segs: raw, verb: "" });
      const allow = new Set<string>();
      for (const { segs, verb } of attempts) {
        let decoded: string[];
        try {
          decoded = segs.map((s) => decodeURIComponent(s));
        } catch {
          return { kind: "bad", message: `path ${path.slice(0, 200)} has a malformed percent-escape` };
        }
        const starts: number[] = [];
        const binding = search(root, decoded, 0, verb, httpMethod, starts, allow);
        if (binding === undefined) continue;
        const values = binding.template.variables.map((v) => {
          const from = starts[v.start] as number;
          const to = v.end < starts.length ? (starts[v.end] as number) : segs.length;
          return v.multi ? segs.slice(from, to).map(decodeKeepingSlash).join("/") : (decoded[from] as string);
        });
        return { kind: "found", binding, values };
      }
      if (allow.size > 0) return { kind: "method", allow: [...allow].sort() };
      return { kind: "none" };
    },
    owns(path) {
      const end = path.indexOf("/", 1);
      return prefixes.has(decodeLiteral(end < 0 ? path.slice(1) : path.slice(1, end)));
    },
  };
}
