import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http2";
import type { HeaderList } from "./hpack.js";

const connectionHeaders = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "host"]);
/** Incoming duplicates of these keep the first value (as node:http2 does). */
const singleValueHeaders = new Set([
  ":status",
  ":method",
  ":authority",
  ":scheme",
  ":path",
  ":protocol",
  "content-type",
  "content-length",
  "authorization",
  "user-agent",
  "host",
]);

/** Header object (node's shape) to an HPACK list after `list`'s pseudo-headers: names lowercased, arrays expanded. */
export function toHeaderList(headers: OutgoingHttpHeaders | IncomingHttpHeaders, list: HeaderList = []): HeaderList {
  for (const key in headers) {
    const value = headers[key];
    if (value === undefined || value === null || key.charCodeAt(0) === 58 /* : */) continue;
    const name = key.toLowerCase();
    if (connectionHeaders.has(name)) continue;
    if (Array.isArray(value)) {
      for (const v of value) list.push([name, String(v)]);
    } else {
      list.push([name, typeof value === "string" ? value : String(value)]);
    }
  }
  return list;
}

/**
 * An HPACK list to node's header object (`:status` a number; duplicates joined as node joins them).
 * The object has no prototype: a field named `constructor` or `__proto__` is just a field.
 * A response's names are lowercased here; a request's are lowercase already (`requestHeadersProblem`
 * refused any other), so the server role passes `lowercase` false.
 */
export function toHeaderObject(list: HeaderList, lowercase = true): IncomingHttpHeaders {
  const out = Object.create(null) as IncomingHttpHeaders;
  for (let i = 0; i < list.length; i++) {
    const field = list[i] as [string, string];
    let name = field[0];
    const value = field[1];
    if (lowercase) name = name.toLowerCase();
    const existing = out[name];
    if (existing === undefined) {
      if (name === ":status") (out as Record<string, unknown>)[name] = Number(value);
      else out[name] = name === "set-cookie" ? [value] : value;
    } else if (singleValueHeaders.has(name)) {
      // The first value stands.
    } else if (Array.isArray(existing)) {
      existing.push(value);
    } else if (name === "cookie") {
      out[name] = `${existing}; ${value}`;
    } else {
      out[name] = `${existing}, ${value}`;
    }
  }
  return out;
}
