import { type DescField, type DescMessage, type DescMethod, type DescService, getOption, hasOption } from "@bufbuild/protobuf";
import { http } from "@portico/gen/google/api/annotations_pb.js";
import type { HttpRule } from "@portico/gen/google/api/http_pb.js";

/** One segment of a path template: a literal, `*` (one segment) or `**` (the rest of the path). */
export type TemplateSegment = { readonly kind: "literal"; readonly value: string } | { readonly kind: "single" | "multi" };

/** A `{field.path=segments}` of a template: which template segments it covers, and the request field it sets. */
export interface TemplateVariable {
  /** The field path as written (`user.id`). */
  readonly name: string;
  readonly fields: readonly DescField[];
  /** Index of its first segment in `segments`. */
  readonly start: number;
  /** Index after its last segment. */
  readonly end: number;
  /** It may span several path segments (`**`, or more than one segment): `/` and `%2F` are kept as sent. */
  readonly multi: boolean;
}

/** A parsed `google.api.http` path template: `/v1/{name=shelves/*}/books:verb`. */
export interface PathTemplate {
  readonly text: string;
  readonly segments: readonly TemplateSegment[];
  readonly verb: string;
  readonly variables: readonly TemplateVariable[];
}

/** One REST route of an rpc: an HTTP method and a path template, with where the body and the response go. */
export interface HttpBinding {
  readonly method: DescMethod;
  /** `GET`, `PUT`, `POST`, `DELETE`, `PATCH` or a custom kind, upper case. */
  readonly httpMethod: string;
  readonly template: PathTemplate;
  /** Unset: no body; `*`: every field not bound by the path; else the top-level field the body is. */
  readonly body: "*" | DescField | undefined;
  /** The response field that is the response body (unset: the whole response message). */
  readonly responseBody: DescField | undefined;
  /** The fields a query parameter may set (top-level; nested ones by dotted path below them). */
  readonly queryFields: readonly DescField[];
}

/** A `google.api.http` annotation that cannot be served, naming the method and why. */
export class HttpRuleError extends Error {
  override name = "HttpRuleError";
}

const literalPattern = /^[A-Za-z0-9\-._~!$&'()+,;=@%]+$/;
const identPattern = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Parses and checks a path template against the request message; throws a message naming the problem. */
export function parsePathTemplate(text: string, input: DescMessage): PathTemplate {
  if (!text.startsWith("/")) throw new Error(`path template "${text}" must start with "/"`);
  let rest = text.slice(1);
  let verb = "";
  // The verb is a ":" after the last "/" that is outside braces.
  const lastSlash = rest.lastIndexOf("/");
  const lastBrace = rest.lastIndexOf("}");
  const colon = rest.indexOf(":", Math.max(lastSlash, lastBrace) + 1);
  if (colon >= 0) {
    verb = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!literalPattern.test(verb)) throw new Error(`path template "${text}": verb ":${verb}" is not a literal`);
  }
  const segments: TemplateSegment[] = [];
  const variables: TemplateVariable[] = [];
  let i = 0;
  const readSegments = (inVariable: boolean): void => {
    for (;;) {
      if (rest[i] === "{") {
        if (inVariable) throw new Error(`path template "${text}": variables cannot be nested`);
        readVariable();
      } else {
        let end = i;
        while (end < rest.length && !"/{}".includes(rest[end] as string)) end++;
        const raw = rest.slice(i, end);
        i = end;
        if (raw === "*") segments.push({ kind: "single" });
        else if (raw === "**") segments.push({ kind: "multi" });
        else if (raw !== "" && literalPattern.test(raw)) segments.push({ kind: "literal", value: raw });
        else throw new Error(`path template "${text}": "${raw}" is not a segment (a literal, *, ** or {field})`);
      }
      if (i < rest.length && rest[i] !== "/") throw new Error(`path template "${text}": unexpected "${rest.slice(i)}"`);
      if (rest[i] !== "/") return;
      i++;
    }
  };
  const readVariable = (): void => {
    const close = rest.indexOf("}", i);
    if (close < 0) throw new Error(`path template "${text}": "{" without "}"`);
    const inner = rest.slice(i + 1, close);
    const eq = inner.indexOf("=");
    const name = eq < 0 ? inner : inner.slice(0, eq);
    const start = segments.length;
    if (eq < 0) segments.push({ kind: "single" });
    else {
      const saved = { rest, i };
      rest = inner.slice(eq + 1);
      i = 0;
      readSegments(true);
      if (i !== rest.length) throw new Error(`path template "${text}": bad segments in {${inner}}`);
      rest = saved.rest;
      i = saved.i;
    }
    i = close + 1;
    const covered = segments.slice(start);
    if (variables.some((v) => v.name === name)) throw new Error(`path template "${text}": {${name}} appears twice`);
    variables.push({
      name,
      fields: fieldPath(input, name, `path variable {${name}}`),
      start,
      end: segments.length,
      multi: covered.length > 1 || covered.some((s) => s.kind === "multi"),
    });
  };
  if (rest !== "") readSegments(false);
  if (i !== rest.length) throw new Error(`path template "${text}": unexpected "${rest.slice(i)}"`);
  const multi = segments.findIndex((s) => s.kind === "multi");
  if (multi >= 0 && multi !== segments.length - 1) throw new Error(`path template "${text}": "**" must be the last segment`);
  for (const v of variables) {
    const leaf = v.fields[v.fields.length - 1] as DescField;
    if (leaf.fieldKind !== "scalar" && leaf.fieldKind !== "enum") {
      throw new Error(`path variable {${v.name}} must be a singular scalar or enum field, not ${kindOf(leaf)}`);
    }
  }
  return { text, segments, verb, variables };
}

function kindOf(field: DescField): string {
  if (field.fieldKind === "list") return "a repeated field";
  if (field.fieldKind === "map") return "a map";
  if (field.fieldKind === "message") return `a message (${field.message.typeName})`;
  return field.fieldKind;
}

/** Resolves `a.b.c` to fields of `message`, each but the last a singular message field. */
export function fieldPath(message: DescMessage, path: string, what: string): DescField[] {
  const fields: DescField[] = [];
  let current: DescMessage | undefined = message;
  for (const part of path.split(".")) {
    if (current === undefined) throw new Error(`${what}: "${path}" goes through a field that is not a message`);
    if (!identPattern.test(part)) throw new Error(`${what}: "${part}" is not a field name`);
    const field: DescField | undefined = current.fields.find((f) => f.name === part);
    if (field === undefined) throw new Error(`${what}: ${current.typeName} has no field "${part}"`);
    fields.push(field);
    current = field.fieldKind === "message" ? field.message : undefined;
  }
  return fields;
}

function httpMethodOf(rule: HttpRule): { httpMethod: string; path: string } | undefined {
  const p = rule.pattern;
  switch (p.case) {
    case undefined:
      return undefined;
    case "custom":
      return { httpMethod: p.value.kind.toUpperCase(), path: p.value.path };
    default:
      return { httpMethod: p.case.toUpperCase(), path: p.value };
  }
}

function bindingOf(method: DescMethod, rule: HttpRule, nested: boolean): HttpBinding {
  const pattern = httpMethodOf(rule);
  if (pattern === undefined) throw new Error("no pattern: set one of get, put, post, delete, patch or custom");
  const where = `${pattern.httpMethod} "${pattern.path}"`;
  try {
    if (nested && rule.additionalBindings.length > 0) throw new Error("additional_bindings cannot be nested");
    if (pattern.httpMethod === "" || !/^[A-Z]+$/.test(pattern.httpMethod)) {
      throw new Error(`custom kind "${pattern.httpMethod}" is not an HTTP method`);
    }
    if (method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming") {
      throw new Error(`a ${method.methodKind.replace("_", "-")} method cannot be served over REST`);
    }
    if (rule.selector !== "") throw new Error("selector is only for service config files, not for a method option");
    const template = parsePathTemplate(pattern.path, method.input);
    let body: HttpBinding["body"];
    if (rule.body === "*") body = "*";
    else if (rule.body !== "") {
      const field = method.input.fields.find((f) => f.name === rule.body);
      if (field === undefined) throw new Error(`body: ${method.input.typeName} has no field "${rule.body}"`);
      if (template.variables.some((v) => v.fields.length === 1 && v.fields[0] === field)) {
        throw new Error(`body: "${rule.body}" is also bound by the path`);
      }
      body = field;
    }
    if (body !== undefined && (pattern.httpMethod === "GET" || pattern.httpMethod === "DELETE")) {
      throw new Error(`a ${pattern.httpMethod} binding cannot have a body`);
    }
    let responseBody: DescField | undefined;
    if (rule.responseBody !== "") {
      responseBody = method.output.fields.find((f) => f.name === rule.responseBody);
      if (responseBody === undefined) {
        throw new Error(`response_body: ${method.output.typeName} has no field "${rule.responseBody}"`);
      }
    }
    const bound = new Set(template.variables.filter((v) => v.fields.length === 1).map((v) => v.fields[0]));
    const queryFields =
      body === "*" ? [] : method.input.fields.filter((f) => !bound.has(f) && f !== body && f.fieldKind !== "map");
    return { method, httpMethod: pattern.httpMethod, template, body, responseBody, queryFields };
  } catch (error) {
    throw new Error(`${where}: ${(error as Error).message}`);
  }
}

/** The REST bindings of one method (its rule and the rule's `additional_bindings`); none without the option. */
export function httpBindingsOf(method: DescMethod): HttpBinding[] {
  if (!hasOption(method, http)) return [];
  const rule = getOption(method, http);
  try {
    return [bindingOf(method, rule, false), ...rule.additionalBindings.map((r) => bindingOf(method, r, true))];
  } catch (error) {
    throw new HttpRuleError(`${method.parent.typeName}.${method.name}: google.api.http ${(error as Error).message}`);
  }
}

/** A binding's identity for conflicts: method, literal segments, wildcards and verb. */
export function bindingKey(binding: HttpBinding): string {
  const shape = binding.template.segments.map((s) => (s.kind === "literal" ? s.value : s.kind === "single" ? "*" : "**"));
  return `${binding.httpMethod} /${shape.join("/")}${binding.template.verb === "" ? "" : `:${binding.template.verb}`}`;
}

/**
 * Every REST binding of `services`' methods, checked: each template against its request message,
 * and no two bindings with the same method and path shape. Throws `HttpRuleError` naming the method.
 */
export function readHttpBindings(services: Iterable<DescService>): HttpBinding[] {
  const all: HttpBinding[] = [];
  const seen = new Map<string, DescMethod>();
  for (const service of services) {
    for (const method of service.methods) {
      for (const binding of httpBindingsOf(method)) {
        const key = bindingKey(binding);
        const other = seen.get(key);
        if (other !== undefined) {
          throw new HttpRuleError(
            `${service.typeName}.${method.name}: google.api.http ${binding.httpMethod} "${binding.template.text}" is already bound to ${other.parent.typeName}.${other.name}`,
          );
        }
        seen.set(key, method);
        all.push(binding);
      }
    }
  }
  return all;
}
