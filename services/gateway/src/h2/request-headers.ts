import type { HeaderList } from "./hpack.js";

/*
 * Header blocks as RFC 9113 §8.2 and §8.3 require them: what makes a request (or an upstream's
 * response) malformed, answered with a stream error of type PROTOCOL_ERROR. One pass over the
 * fields, no allocation.
 */

const requestPseudo = new Set([":method", ":scheme", ":authority", ":path", ":protocol"]);
const connectionSpecific = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]);
const invalidValue = /[\0\r\n]/;

/** A field name RFC 9113 §8.2.1 allows after the pseudo-headers: no uppercase, controls, space, DEL or non-ASCII, no ':'. */
function badName(name: string, from: number): boolean {
  if (name.length <= from) return true;
  for (let i = from; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c <= 0x20 || (c >= 0x41 && c <= 0x5a) || c >= 0x7f || c === 0x3a) return true;
  }
  return false;
}

/**
 * Long values found valid, as a client repeats them on every request (a bearer token of several
 * hundred bytes, its HPACK literal decoded to the same string each time): checked once, not on
 * every request. Validity depends on the text alone; the set is bounded: at most 256 values of at
 * most 2,048 characters (about 1 MB), longer ones are checked every time.
 */
const validLongValues = new Set<string>();
const LONG_VALUE = 64;
const REMEMBERED_VALUE = 2048;

function badValue(value: string): boolean {
  const length = value.length;
  if (length === 0) return false;
  const first = value.charCodeAt(0);
  const last = value.charCodeAt(length - 1);
  if (first === 0x20 || first === 0x09 || last === 0x20 || last === 0x09) return true;
  if (length < LONG_VALUE || length > REMEMBERED_VALUE) return invalidValue.test(value);
  if (validLongValues.has(value)) return false;
  if (invalidValue.test(value)) return true;
  if (validLongValues.size >= 256) validLongValues.clear();
  validLongValues.add(value);
  return false;
}

/** Why a request's header block is malformed, or undefined when it is well-formed. */
export function requestHeadersProblem(list: HeaderList): string | undefined {
  let regular = false;
  let method: string | undefined;
  let scheme = false;
  let path: string | undefined;
  let authority = false;
  let protocol = false;
  for (let i = 0; i < list.length; i++) {
    const field = list[i] as [string, string];
    const name = field[0];
    const value = field[1];
    if (name.charCodeAt(0) === 0x3a) {
      if (regular) return `pseudo-header ${name} after a regular field`;
      if (!requestPseudo.has(name)) return `pseudo-header ${name} in a request`;
      if (name === ":method") {
        if (method !== undefined) return "duplicated :method";
        method = value;
      } else if (name === ":path") {
        if (path !== undefined) return "duplicated :path";
        path = value;
      } else if (name === ":scheme") {
        if (scheme) return "duplicated :scheme";
        scheme = true;
      } else if (name === ":authority") {
        if (authority) return "duplicated :authority";
        authority = true;
      } else {
        if (protocol) return "duplicated :protocol";
        protocol = true;
      }
      if (badValue(value)) return `invalid value of ${name}`;
      continue;
    }
    regular = true;
    const problem = regularFieldProblem(name, value);
    if (problem !== undefined) return problem;
  }
  if (method === undefined) return "no :method";
  if (method === "CONNECT" && !protocol) {
    if (!authority || scheme || path !== undefined) return "CONNECT needs :authority and no :scheme or :path";
    return undefined;
  }
  if (!scheme) return "no :scheme";
  if (path === undefined) return "no :path";
  if (path.length === 0) return "empty :path";
  if (path.charCodeAt(0) !== 0x2f && !(path === "*" && method === "OPTIONS")) return "a :path that is not absolute";
  return undefined;
}

/** Why a trailer block is malformed (pseudo-headers, bad names or values), or undefined. */
export function trailersProblem(list: HeaderList): string | undefined {
  for (let i = 0; i < list.length; i++) {
    const field = list[i] as [string, string];
    if (field[0].charCodeAt(0) === 0x3a) return `pseudo-header ${field[0]} in trailers`;
    const problem = regularFieldProblem(field[0], field[1]);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

function regularFieldProblem(name: string, value: string): string | undefined {
  if (badName(name, 0)) return `invalid field name ${JSON.stringify(name)}`;
  if (connectionSpecific.has(name)) return `connection-specific field ${name}`;
  if (name === "te" && value !== "trailers") return "te other than trailers";
  if (badValue(value)) return `invalid value of ${name}`;
  return undefined;
}

/** A response field value's characters (RFC 9110 §5.5): HTAB, visible ASCII, space and obs-text; no other controls. */
function badResponseValue(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f || c > 0xff) return true;
  }
  return false;
}

/**
 * Why an upstream's response header block (or its trailers) is malformed, or undefined: a field the
 * gateway could not hand on to its caller (controls or a line break in a value, an invalid name, a
 * pseudo-header other than :status). RFC 9113 §8.1.1 makes it a stream error; an HTTP/1.1 caller's
 * response could not even carry it.
 */
export function responseHeadersProblem(list: HeaderList, trailers: boolean): string | undefined {
  let regular = false;
  let status = false;
  for (let i = 0; i < list.length; i++) {
    const field = list[i] as [string, string];
    const name = field[0];
    if (name.charCodeAt(0) === 0x3a) {
      if (trailers) return `pseudo-header ${name} in trailers`;
      if (regular) return `pseudo-header ${name} after a regular field`;
      if (name !== ":status") return `pseudo-header ${name} in a response`;
      if (status) return "duplicated :status";
      status = true;
      continue;
    }
    regular = true;
    if (badName(name, 0)) return `invalid field name ${JSON.stringify(name)}`;
    if (badResponseValue(field[1])) return `invalid value of ${name}`;
  }
  if (!trailers && !status) return "no :status";
  return undefined;
}

/** A content-length value as a number, or -1 when it is not a plain decimal integer. */
export function parseContentLength(value: string): number {
  if (value.length === 0 || value.length > 15) return -1;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
  }
  return Number(value);
}
