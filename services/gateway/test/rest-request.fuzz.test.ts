// Property-based tests of the REST path matcher and request builder on the platform's own
// bindings (gen/portico.binpb); `npm run fuzz` runs them longer.
import { fromBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import fc from "fast-check";
import { describe, expect } from "vitest";
import { defaultImagePath, loadImage } from "../src/load-image.js";
import { readHttpBindings } from "../src/rest/http-rule.js";
import { createPathMatcher } from "../src/rest/path-matcher.js";
import { requestFromPathAndQuery, restRequestBinary } from "../src/rest/rest-request.js";
import { servicesOf } from "../src/route-table.js";
import { itHolds } from "./test-fuzz.js";

const { registry } = loadImage(defaultImagePath());
const bindings = readHttpBindings(servicesOf(registry));
const matcher = createPathMatcher(bindings);

const segment = fc.oneof(
  fc.constantFrom("v1", "greetings", "me", "language", "languages", "auth", "login", "greetings:stream", "x:stream", ""),
  fc.string({ maxLength: 12 }).map((s) => encodeURIComponent(s)),
  fc.string({ maxLength: 6 }),
);
const path = fc.array(segment, { maxLength: 5 }).map((parts) => `/${parts.join("/")}`);
const query = fc
  .array(
    fc.tuple(
      fc.constantFrom("page_size", "pageSize", "page_token", "name", "count", "interval_ms", "nope", "a.b", "count.x"),
      fc.oneof(fc.string({ maxLength: 8 }), fc.integer().map(String), fc.constantFrom("true", "-1", "4294967296", "1e3")),
    ),
    { maxLength: 4 },
  )
  .map((pairs) => new URLSearchParams(pairs).toString());
const method = fc.constantFrom("GET", "POST", "PUT", "PATCH", "DELETE");
const body = fc.oneof(
  fc.constant(""),
  fc.json({ maxDepth: 2 }),
  fc.string({ maxLength: 20 }),
  fc.constantFrom('{"name":"Ada"}', '{"name":12}', '{"count":"3"}', '{"nope":1}', "[]", "null"),
);

/** What a REST request gets: an error the caller caused (invalid_argument, named) or a message the method decodes. */
function outcome(httpMethod: string, p: string, q: string, b: string): "bad" | "none" | "method" | "ok" | "invalid" {
  const match = matcher.match(httpMethod, p);
  if (match.kind !== "found") return match.kind;
  try {
    const fromUrl = requestFromPathAndQuery(match.binding, match.values, q, registry);
    const binary = restRequestBinary(match.binding, fromUrl, Buffer.from(b), registry);
    fromBinary(match.binding.method.input, binary);
    return "ok";
  } catch (error) {
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.InvalidArgument);
    expect((error as ConnectError).rawMessage.length).toBeGreaterThan(0);
    return "invalid";
  }
}

describe("REST matching and request building", () => {
  itHolds(
    "any method, path, query and body is matched or refused, and builds a request or fails invalid_argument with a message",
    fc.property(method, path, query, body, (m, p, q, b) => {
      expect(["bad", "none", "method", "ok", "invalid"]).toContain(outcome(m, p, q, b));
    }),
  );

  itHolds(
    "a path variable round-trips: /v1/greetings/<any name>:stream builds GreetStream with that name",
    fc.property(fc.string({ minLength: 1, maxLength: 30 }), (name) => {
      const match = matcher.match("GET", `/v1/greetings/${encodeURIComponent(name)}:stream`);
      // A name that itself ends in ":<verb>" is still one segment; the verb is only the last one.
      expect(match.kind).toBe("found");
      if (match.kind !== "found") return;
      expect(match.binding.method.name).toBe("GreetStream");
      expect(match.values).toEqual([name]);
      expect(requestFromPathAndQuery(match.binding, match.values, "", registry)).toEqual({ name });
    }),
  );
});
