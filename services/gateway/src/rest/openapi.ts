import { type DescEnum, type DescField, type DescMessage, type DescMethod, ScalarType } from "@bufbuild/protobuf";
import { type EffectivePolicy, resolvePolicy } from "@portico/kit";
import { type HttpBinding, httpBindingsOf } from "./http-rule.js";
import { commentOf } from "./proto-comments.js";
import { streamContentTypes } from "./rest-writer.js";

type Schema = Record<string, unknown>;

/** One method the document describes, with the limits the gateway applies to it. */
export interface OpenApiMethod {
  readonly method: DescMethod;
  readonly policy: EffectivePolicy;
  readonly timeoutMs: number;
  readonly maxRequestBytes: number;
}

export interface OpenApiOptions {
  /** The routed, non-INTERNAL methods, in the order the document lists them. */
  methods: readonly OpenApiMethod[];
  title?: string;
  version?: string;
}

const connectCodes = [
  "canceled",
  "unknown",
  "invalid_argument",
  "deadline_exceeded",
  "not_found",
  "already_exists",
  "permission_denied",
  "resource_exhausted",
  "failed_precondition",
  "aborted",
  "out_of_range",
  "unimplemented",
  "internal",
  "unavailable",
  "data_loss",
  "unauthenticated",
];

/** Well-known types, as protojson writes them. */
const wellKnown: Record<string, Schema> = {
  "google.protobuf.Timestamp": { type: "string", format: "date-time", examples: ["2026-12-04T09:15:00Z"] },
  "google.protobuf.Duration": { type: "string", pattern: "^-?[0-9]+(\\.[0-9]{1,9})?s$", examples: ["1.5s"] },
  "google.protobuf.FieldMask": { type: "string", description: "Comma-separated field paths in lowerCamelCase." },
  "google.protobuf.Struct": { type: "object", additionalProperties: true },
  "google.protobuf.Value": {},
  "google.protobuf.ListValue": { type: "array", items: {} },
  "google.protobuf.Empty": { type: "object" },
  "google.protobuf.Any": {
    type: "object",
    properties: { "@type": { type: "string" } },
    required: ["@type"],
    additionalProperties: true,
  },
  "google.protobuf.StringValue": { type: ["string", "null"] },
  "google.protobuf.BytesValue": { type: ["string", "null"], contentEncoding: "base64" },
  "google.protobuf.BoolValue": { type: ["boolean", "null"] },
  "google.protobuf.Int32Value": { type: ["integer", "null"], format: "int32" },
  "google.protobuf.UInt32Value": { type: ["integer", "null"], minimum: 0, maximum: 4294967295 },
  "google.protobuf.Int64Value": { type: ["string", "null"], format: "int64" },
  "google.protobuf.UInt64Value": { type: ["string", "null"], format: "uint64" },
  "google.protobuf.FloatValue": { type: ["number", "null"], format: "float" },
  "google.protobuf.DoubleValue": { type: ["number", "null"], format: "double" },
};

function scalarSchema(scalar: ScalarType): Schema {
  switch (scalar) {
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return { type: "integer", format: "int32" };
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return { type: "integer", minimum: 0, maximum: 4294967295 };
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return { type: "string", format: "int64", pattern: "^-?[0-9]+$" };
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return { type: "string", format: "uint64", pattern: "^[0-9]+$" };
    case ScalarType.FLOAT:
      return { type: "number", format: "float" };
    case ScalarType.DOUBLE:
      return { type: "number", format: "double" };
    case ScalarType.BOOL:
      return { type: "boolean" };
    case ScalarType.BYTES:
      return { type: "string", contentEncoding: "base64" };
    default:
      return { type: "string" };
  }
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

function withDescription(schema: Schema, description: string): Schema {
  if (description === "") return schema;
  // A $ref with siblings is allowed in 3.1; the description belongs to this use of the type.
  return { ...schema, description };
}

/** Builds `components.schemas` as types are referenced: messages, enums, and the error shape. */
function createSchemas() {
  const schemas: Record<string, Schema> = {};
  const enumSchema = (desc: DescEnum): Schema => {
    if (desc.typeName === "google.protobuf.NullValue") return { type: "null" };
    if (!(desc.typeName in schemas)) {
      schemas[desc.typeName] = withDescription({ type: "string", enum: desc.values.map((v) => v.name) }, commentOf(desc));
    }
    return ref(desc.typeName);
  };
  const messageSchema = (desc: DescMessage): Schema => {
    const known = wellKnown[desc.typeName];
    if (known !== undefined) return known;
    if (!(desc.typeName in schemas)) {
      schemas[desc.typeName] = {}; // placeholder: recursive types refer to it
      schemas[desc.typeName] = objectSchema(desc, desc.fields);
    }
    return ref(desc.typeName);
  };
  const singular = (field: DescField, kind: "scalar" | "enum" | "message"): Schema => {
    if (kind === "enum") return enumSchema(field.enum as DescEnum);
    if (kind === "message") return messageSchema(field.message as DescMessage);
    return scalarSchema(field.scalar as ScalarType);
  };
  const fieldSchema = (field: DescField): Schema => {
    switch (field.fieldKind) {
      case "scalar":
      case "enum":
      case "message":
        return singular(field, field.fieldKind);
      case "list":
        return { type: "array", items: singular(field, field.listKind) };
      case "map":
        return { type: "object", additionalProperties: singular(field, field.mapKind) };
    }
  };
  const objectSchema = (desc: DescMessage, fields: readonly DescField[]): Schema => {
    const properties: Record<string, Schema> = {};
    for (const field of fields) properties[field.jsonName] = withDescription(fieldSchema(field), commentOf(field));
    return withDescription({ type: "object", properties }, commentOf(desc));
  };
  schemas.Error = {
    type: "object",
    description:
      "An error as Connect writes it; the HTTP status is the code's (invalid_argument 400, unauthenticated 401, permission_denied 403, not_found 404, resource_exhausted 429, unavailable 503, deadline_exceeded 504, …).",
    properties: {
      code: { type: "string", enum: connectCodes },
      message: { type: "string" },
      details: {
        type: "array",
        description: "Error details, present when there are any (e.g. google.rpc.RetryInfo when rate limited).",
        items: {
          type: "object",
          properties: {
            type: { type: "string", description: "The detail's fully-qualified message type." },
            value: { type: "string", contentEncoding: "base64", description: "The detail message, binary, base64." },
            debug: { description: "The detail as JSON, when the server adds it." },
          },
        },
      },
    },
    required: ["code"],
  };
  return { schemas, messageSchema, fieldSchema, objectSchema };
}

function policyText(m: OpenApiMethod): string {
  const p = m.policy;
  const lines: string[] = [];
  lines.push(p.access === "public" ? "Access: public (a bearer token is optional)." : "Access: authenticated (a bearer token).");
  if (p.permissions.length > 0) lines.push(`Permissions: ${p.permissions.join(", ")}.`);
  const rates = [p.perUser && `${p.perUser.text} per user`, p.perIp && `${p.perIp.text} per IP`].filter(Boolean);
  if (rates.length > 0) lines.push(`Rate limit: ${rates.join(" and ")} (429 resource_exhausted with Retry-After beyond it).`);
  lines.push(`Timeout: ${m.timeoutMs} ms. Largest request: ${m.maxRequestBytes} bytes.`);
  return lines.join(" ");
}

function errorResponses(m: OpenApiMethod): Record<string, unknown> {
  const error = (description: string, extra: Schema = {}) => ({
    description,
    content: { "application/json": { schema: ref("Error") } },
    ...extra,
  });
  const out: Record<string, unknown> = { "400": error("invalid_argument: a bad value, named in the message") };
  if (m.policy.access !== "public") out["401"] = error("unauthenticated: no token, or one that is not valid");
  if (m.policy.permissions.length > 0) out["403"] = error(`permission_denied: needs ${m.policy.permissions.join(", ")}`);
  out["429"] = error("resource_exhausted: rate limited (Retry-After says when to retry) or the request is too large", {
    headers: { "Retry-After": { description: "Seconds until a call may succeed.", schema: { type: "integer" } } },
  });
  out["503"] = error("unavailable: the service cannot be reached now");
  out["504"] = error("deadline_exceeded: no answer within the timeout");
  out.default = error("Any other error, with the HTTP status of its code");
  return out;
}

function policyExtension(m: OpenApiMethod): Schema {
  const p = m.policy;
  return {
    access: p.access,
    permissions: [...p.permissions],
    ...(p.perUser ? { rateLimitPerUser: p.perUser.text } : {}),
    ...(p.perIp ? { rateLimitPerIp: p.perIp.text } : {}),
    timeoutMs: m.timeoutMs,
    maxRequestBytes: m.maxRequestBytes,
  };
}

/** `{name=shelves/*}` → `{name}`: the OpenAPI path of a binding, with its verb. */
export function openApiPath(binding: HttpBinding): string {
  const t = binding.template;
  const parts: string[] = [];
  for (let i = 0; i < t.segments.length; ) {
    const variable = t.variables.find((v) => v.start === i);
    if (variable !== undefined) {
      parts.push(`{${variable.name}}`);
      i = variable.end;
      continue;
    }
    const s = t.segments[i] as (typeof t.segments)[number];
    parts.push(s.kind === "literal" ? s.value : s.kind === "single" ? "*" : "**");
    i++;
  }
  return `/${parts.join("/")}${t.verb === "" ? "" : `:${t.verb}`}`;
}

/** Query parameters for the fields a binding leaves to the query: scalars, enums, repeated ones, nested by dots. */
function queryParameters(
  fields: readonly DescField[],
  fieldSchema: (f: DescField) => Schema,
  prefix = "",
  seen: ReadonlySet<string> = new Set(),
): unknown[] {
  const out: unknown[] = [];
  for (const field of fields) {
    const name = `${prefix}${field.name}`;
    if (field.fieldKind === "message" && wellKnown[field.message.typeName] === undefined) {
      if (seen.has(field.message.typeName)) continue;
      out.push(...queryParameters(field.message.fields, fieldSchema, `${name}.`, new Set([...seen, field.message.typeName])));
      continue;
    }
    if (field.fieldKind === "map" || (field.fieldKind === "list" && field.listKind === "message")) continue;
    const description = commentOf(field);
    out.push({
      name,
      in: "query",
      required: false,
      ...(description ? { description } : {}),
      schema: fieldSchema(field),
      ...(field.fieldKind === "list" ? { style: "form", explode: true } : {}),
    });
  }
  return out;
}

/**
 * The OpenAPI 3.1 document of the given methods: each as its Connect POST (and Connect GET when
 * NO_SIDE_EFFECTS) and as its REST bindings, request and response schemas from the messages
 * (well-known types as protojson writes them), the bearer scheme on authenticated methods, the
 * policy (`x-portico-policy`), rate limits and errors. Deterministic: the same image gives the same bytes.
 */
export function renderOpenApi(options: OpenApiOptions): Record<string, unknown> {
  const { schemas, messageSchema, fieldSchema, objectSchema } = createSchemas();
  const paths: Record<string, Record<string, unknown>> = {};
  const tags = new Map<string, string>();
  const addOperation = (path: string, verb: string, operation: Record<string, unknown>) => {
    paths[path] ??= {};
    (paths[path] as Record<string, unknown>)[verb] = operation;
  };
  for (const m of options.methods) {
    const { method } = m;
    const service = method.parent;
    tags.set(service.typeName, commentOf(service));
    const comment = commentOf(method);
    const description = [comment, policyText(m)].filter((s) => s !== "").join("\n\n");
    const security = m.policy.access === "public" ? [{}, { bearerAuth: [] }] : [{ bearerAuth: [] }];
    const streaming = method.methodKind === "server_streaming";
    const common = {
      tags: [service.typeName],
      summary: comment.split("\n")[0] || `${service.name}.${method.name}`,
      description,
      security,
      "x-portico-policy": policyExtension(m),
    };
    const rpcPath = `/${service.typeName}/${method.name}`;
    const connectType = streaming ? "application/connect+json" : "application/json";
    const framing = streaming
      ? " Connect streaming: each message is enveloped (a flags byte, a 4-byte big-endian length, the JSON)."
      : "";
    addOperation(rpcPath, "post", {
      ...common,
      operationId: `${service.name}_${method.name}`,
      description: `${description}\n\nConnect protocol.${framing}`,
      parameters: [{ $ref: "#/components/parameters/ConnectTimeout" }],
      requestBody: { required: true, content: { [connectType]: { schema: messageSchema(method.input) } } },
      responses: {
        "200": {
          description: `${method.output.typeName}${framing}`,
          content: { [connectType]: { schema: messageSchema(method.output) } },
        },
        ...errorResponses(m),
      },
    });
    if (m.policy.noSideEffects && !streaming) {
      addOperation(rpcPath, "get", {
        ...common,
        operationId: `${service.name}_${method.name}_Get`,
        description: `${description}\n\nConnect GET: the request message in the query string.`,
        parameters: [
          {
            name: "message",
            in: "query",
            required: true,
            description: `The request (${method.input.typeName}) as JSON.`,
            content: { "application/json": { schema: messageSchema(method.input) } },
          },
          { name: "encoding", in: "query", required: true, schema: { type: "string", enum: ["json"] } },
          { name: "connect", in: "query", required: false, schema: { type: "string", enum: ["v1"] } },
        ],
        responses: {
          "200": {
            description: method.output.typeName,
            content: { "application/json": { schema: messageSchema(method.output) } },
          },
          ...errorResponses(m),
        },
      });
    }
    httpBindingsOf(method).forEach((binding, i) => {
      const parameters: unknown[] = binding.template.variables.map((v) => {
        const leaf = v.fields[v.fields.length - 1] as DescField;
        const shape = binding.template.segments.slice(v.start, v.end);
        const pattern =
          v.multi || shape[0]?.kind === "literal"
            ? shape.map((s) => (s.kind === "literal" ? s.value : s.kind === "single" ? "*" : "**")).join("/")
            : "";
        const text = commentOf(leaf);
        return {
          name: v.name,
          in: "path",
          required: true,
          ...(text || pattern ? { description: [text, pattern && `Matches ${pattern}.`].filter(Boolean).join(" ") } : {}),
          schema: fieldSchema(leaf),
        };
      });
      parameters.push(...queryParameters(binding.queryFields, fieldSchema));
      let requestBody: unknown;
      if (binding.body === "*") {
        const bound = new Set(binding.template.variables.filter((v) => v.fields.length === 1).map((v) => v.fields[0]));
        const schema =
          bound.size === 0
            ? messageSchema(method.input)
            : objectSchema(
                method.input,
                method.input.fields.filter((f) => !bound.has(f)),
              );
        requestBody = { required: false, content: { "application/json": { schema } } };
      } else if (binding.body !== undefined) {
        requestBody = { required: false, content: { "application/json": { schema: fieldSchema(binding.body) } } };
      }
      const result = binding.responseBody === undefined ? messageSchema(method.output) : fieldSchema(binding.responseBody);
      const ok = streaming
        ? {
            description: `A stream of ${method.output.typeName}: NDJSON lines {"result": …} and, when the call fails after it began, a last {"error": …}; or server-sent events (Accept: text/event-stream), one "data:" per message and "event: error" for a failure.`,
            content: {
              [streamContentTypes.ndjson]: {
                schema: {
                  type: "object",
                  properties: { result: result, error: ref("Error") },
                },
              },
              [streamContentTypes.sse]: { schema: { type: "string" } },
            },
          }
        : {
            description:
              binding.responseBody === undefined
                ? method.output.typeName
                : `${method.output.typeName}.${binding.responseBody.name}`,
            content: { "application/json": { schema: result } },
          };
      addOperation(openApiPath(binding), binding.httpMethod.toLowerCase(), {
        ...common,
        operationId: `${service.name}_${method.name}_Rest${i === 0 ? "" : i + 1}`,
        description: `${description}\n\nREST: ${binding.httpMethod} ${binding.template.text}, proto3 JSON. An unknown query parameter is refused (400).`,
        ...(parameters.length > 0 ? { parameters } : {}),
        ...(requestBody === undefined ? {} : { requestBody }),
        responses: { "200": ok, ...errorResponses(m) },
      });
    });
  }
  return {
    openapi: "3.1.0",
    info: {
      title: options.title ?? "Portico API",
      version: options.version ?? "v1",
      description:
        "Every method through the Portico gateway: as a Connect call (POST /<package>.<Service>/<Method>, JSON) and as REST where its .proto declares google.api.http bindings. Generated from the protos by `npm run generate`; the gateway serves it at /openapi.json and a reference at /docs.",
    },
    servers: [{ url: "/", description: "the gateway that serves this document" }],
    tags: [...tags].map(([name, description]) => (description ? { name, description } : { name })),
    paths,
    components: {
      schemas,
      parameters: {
        ConnectTimeout: {
          name: "connect-timeout-ms",
          in: "header",
          required: false,
          description: "The caller's deadline in milliseconds, capped by the method's timeout.",
          schema: { type: "integer", minimum: 1 },
        },
      },
      securitySchemes: {
        bearerAuth: {
          type: "http",
          scheme: "bearer",
          bearerFormat: "JWT",
          description: "An access token from POST /v1/auth/login (or AuthService/Login).",
        },
      },
    },
  };
}

/** The methods a route-like list describes: routed (with an upstream) and not INTERNAL, in path order. */
export function openApiMethodsOf(
  methods: Iterable<{ method: DescMethod; routed: boolean; timeoutMs: number; maxRequestBytes: number }>,
): OpenApiMethod[] {
  const out: OpenApiMethod[] = [];
  for (const m of methods) {
    const policy = resolvePolicy(m.method);
    if (!m.routed || policy.access === "internal") continue;
    out.push({ method: m.method, policy, timeoutMs: m.timeoutMs, maxRequestBytes: m.maxRequestBytes });
  }
  return out;
}
