import {
  type DescField,
  type DescMessage,
  fromJson,
  type JsonObject,
  type JsonValue,
  type Registry,
  ScalarType,
  toBinary,
} from "@bufbuild/protobuf";
import { Code, type ConnectError } from "@connectrpc/connect";
import { connectError } from "../connect-error.js";
import { fieldPath, type HttpBinding } from "./http-rule.js";

/** Well-known message types whose proto3 JSON is a string (or a scalar), so one query value sets them. */
const stringLikeMessages = new Set([
  "google.protobuf.Timestamp",
  "google.protobuf.Duration",
  "google.protobuf.FieldMask",
  "google.protobuf.StringValue",
  "google.protobuf.BytesValue",
  "google.protobuf.Int32Value",
  "google.protobuf.UInt32Value",
  "google.protobuf.Int64Value",
  "google.protobuf.UInt64Value",
  "google.protobuf.FloatValue",
  "google.protobuf.DoubleValue",
  "google.protobuf.BoolValue",
]);

const scalarNames: Record<number, string> = {
  [ScalarType.DOUBLE]: "double",
  [ScalarType.FLOAT]: "float",
  [ScalarType.INT64]: "int64",
  [ScalarType.UINT64]: "uint64",
  [ScalarType.INT32]: "int32",
  [ScalarType.FIXED64]: "fixed64",
  [ScalarType.FIXED32]: "fixed32",
  [ScalarType.BOOL]: "bool",
  [ScalarType.STRING]: "string",
  [ScalarType.BYTES]: "bytes (base64)",
  [ScalarType.UINT32]: "uint32",
  [ScalarType.SFIXED32]: "sfixed32",
  [ScalarType.SFIXED64]: "sfixed64",
  [ScalarType.SINT32]: "sint32",
  [ScalarType.SINT64]: "sint64",
};

/** What a field's value must be, for error messages: `uint32`, `one of A, B`. */
export function expectedOf(field: DescField): string {
  if (field.enum !== undefined) return `one of ${field.enum.values.map((v) => v.name).join(", ")}`;
  if (field.message !== undefined) return field.message.typeName;
  return scalarNames[field.scalar as number] ?? "a value";
}

function badValue(where: string, raw: string, field: DescField, why?: string): ConnectError {
  return connectError(
    `${where}: "${raw.slice(0, 100)}" is not a valid ${field.name} (${expectedOf(field)})${why ? `: ${why}` : ""}`,
    Code.InvalidArgument,
  );
}

/** The proto3 JSON of one text value (path variable or query parameter) for `field`. */
function jsonOfText(field: DescField, raw: string, where: string): JsonValue {
  const isBool = field.scalar === ScalarType.BOOL || field.message?.typeName === "google.protobuf.BoolValue";
  if (isBool) {
    if (raw === "true" || raw === "false") return raw === "true";
    throw badValue(where, raw, field);
  }
  if (field.enum !== undefined) return /^-?\d+$/.test(raw) ? Number(raw) : raw;
  if (field.message !== undefined && !stringLikeMessages.has(field.message.typeName)) {
    throw connectError(
      `${where}: ${field.name} is a message (${field.message.typeName}); set its fields with ${field.name}.<field>=…`,
      Code.InvalidArgument,
    );
  }
  return raw;
}

function setPath(target: JsonObject, fields: readonly DescField[], value: JsonValue, append: boolean): void {
  let node = target;
  for (let i = 0; i < fields.length - 1; i++) {
    const key = (fields[i] as DescField).jsonName;
    const next = node[key];
    if (typeof next === "object" && next !== null && !Array.isArray(next)) node = next;
    else node = node[key] = {};
  }
  const key = (fields[fields.length - 1] as DescField).jsonName;
  if (append) {
    const list = node[key];
    if (Array.isArray(list)) list.push(value);
    else node[key] = [value];
  } else node[key] = value;
}

/** Checks one value alone against its field with protojson, so the error names the parameter that was wrong. */
function check(
  input: DescMessage,
  registry: Registry,
  fields: readonly DescField[],
  value: JsonValue,
  where: string,
  raw: string,
): void {
  const probe: JsonObject = {};
  setPath(probe, fields, value, false);
  try {
    fromJson(input, probe, { registry });
  } catch (error) {
    const message = (error as Error).message;
    throw badValue(where, raw, fields[fields.length - 1] as DescField, message.slice(message.lastIndexOf(": ") + 2));
  }
}

/**
 * The request message of a REST call without its body: path variables and query parameters as
 * proto3 JSON (names as protojson writes them), each checked against its field. A query parameter
 * that names no field the binding leaves to the query is refused (400), never ignored.
 */
export function requestFromPathAndQuery(
  binding: HttpBinding,
  values: readonly string[],
  query: string,
  registry: Registry,
): JsonObject {
  const input = binding.method.input;
  const out: JsonObject = {};
  binding.template.variables.forEach((variable, i) => {
    const raw = values[i] as string;
    const where = `path variable {${variable.name}}`;
    const leaf = variable.fields[variable.fields.length - 1] as DescField;
    const value = jsonOfText(leaf, raw, where);
    check(input, registry, variable.fields, value, where, raw);
    setPath(out, variable.fields, value, false);
  });
  if (query === "") return out;
  const params = new URLSearchParams(query);
  for (const [name, raw] of params) {
    const where = `query parameter ${name}`;
    const top = binding.queryFields.find((f) => f.name === name.split(".")[0] || f.jsonName === name.split(".")[0]);
    if (top === undefined) {
      const allowed = binding.queryFields.map((f) => f.name);
      throw connectError(
        `unknown query parameter "${name.slice(0, 100)}": ${binding.httpMethod} ${binding.template.text} takes ${allowed.length === 0 ? "none" : allowed.join(", ")}`,
        Code.InvalidArgument,
      );
    }
    let fields: DescField[];
    try {
      fields = fieldPath(input, [top.name, ...name.split(".").slice(1)].join("."), where);
      if (fields.slice(1).some((f) => f.fieldKind === "map"))
        throw new Error(`${where}: map fields cannot be set from the query`);
    } catch (error) {
      throw connectError((error as Error).message, Code.InvalidArgument);
    }
    const leaf = fields[fields.length - 1] as DescField;
    const repeated = leaf.fieldKind === "list";
    if (!repeated && params.getAll(name).length > 1) {
      throw connectError(`${where} is given more than once, and ${leaf.name} is not repeated`, Code.InvalidArgument);
    }
    const value = jsonOfText(leaf, raw, where);
    check(input, registry, fields, repeated ? [value] : value, where, raw);
    setPath(out, fields, value, repeated);
  }
  return out;
}

/** The body of a REST call as JSON: `{}` for an empty `*` body, refused when the binding takes none. */
function bodyJson(binding: HttpBinding, body: Buffer): JsonValue | undefined {
  if (body.length === 0) return undefined;
  if (binding.body === undefined) {
    throw connectError(
      `${binding.httpMethod} ${binding.template.text} takes no request body (got ${body.length} bytes): send the fields in the query string`,
      Code.InvalidArgument,
    );
  }
  try {
    return JSON.parse(body.toString("utf8")) as JsonValue;
  } catch (error) {
    throw connectError(`request body is not JSON: ${(error as Error).message}`, Code.InvalidArgument);
  }
}

/** The whole request message in binary: the body merged with the path and query values (which win). */
export function restRequestBinary(binding: HttpBinding, fromUrl: JsonObject, body: Buffer, registry: Registry): Uint8Array {
  const json = bodyJson(binding, body);
  let merged: JsonObject = fromUrl;
  if (json !== undefined && binding.body !== undefined) {
    if (binding.body === "*" && (typeof json !== "object" || json === null || Array.isArray(json))) {
      throw connectError(`request body must be a JSON object (${binding.method.input.typeName})`, Code.InvalidArgument);
    }
    const fromBody = binding.body === "*" ? (json as JsonObject) : { [binding.body.jsonName]: json };
    // Path and query values win over the body's (a path variable may sit inside the body field).
    // The body was parsed for this call alone: merged in place.
    merged = mergeInto(fromBody, fromUrl);
  }
  try {
    return toBinary(binding.method.input, fromJson(binding.method.input, merged, { registry }));
  } catch (error) {
    throw connectError(`invalid request body: ${(error as Error).message}`, Code.InvalidArgument);
  }
}

function mergeInto(target: JsonObject, source: JsonObject): JsonObject {
  for (const key in source) {
    const s = source[key] as JsonValue;
    const t = target[key];
    if (typeof s === "object" && s !== null && !Array.isArray(s) && typeof t === "object" && t !== null && !Array.isArray(t)) {
      mergeInto(t, s);
    } else target[key] = s;
  }
  return target;
}
