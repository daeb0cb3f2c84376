import { describe, expect, it } from "vitest";
import type { HeaderList } from "../../src/h2/hpack.js";
import {
  parseContentLength,
  requestHeadersProblem,
  responseHeadersProblem,
  trailersProblem,
} from "../../src/h2/request-headers.js";

const get: HeaderList = [
  [":method", "GET"],
  [":scheme", "https"],
  [":authority", "example.com"],
  [":path", "/a.B/C"],
];

describe("requestHeadersProblem (RFC 9113 §8.2, §8.3)", () => {
  it("accepts a well-formed request, te: trailers, OPTIONS *, and CONNECT with :authority only", () => {
    expect(requestHeadersProblem([...get, ["te", "trailers"], ["x-a", "b c"], ["x-empty", ""]])).toBeUndefined();
    expect(
      requestHeadersProblem([
        [":method", "OPTIONS"],
        [":scheme", "https"],
        [":path", "*"],
      ]),
    ).toBeUndefined();
    expect(
      requestHeadersProblem([
        [":method", "CONNECT"],
        [":authority", "example.com:443"],
      ]),
    ).toBeUndefined();
  });

  for (const [why, list, problem] of [
    ["an uppercase name", [...get, ["X-Big", "1"]], /invalid field name/],
    ["a space in a name", [...get, ["x big", "1"]], /invalid field name/],
    ["an empty name", [...get, ["", "1"]], /invalid field name/],
    ["CR or LF in a value", [...get, ["x-a", "b\r\nx-injected: 1"]], /invalid value/],
    ["NUL in a value", [...get, ["x-a", "b\0"]], /invalid value/],
    ["a value with leading whitespace", [...get, ["x-a", " b"]], /invalid value/],
    ["an unknown pseudo-header", [...get, [":foo", "1"]], /pseudo-header :foo/],
    ["a response pseudo-header", [[":status", "200"], ...get], /pseudo-header :status/],
    ["a pseudo-header after a regular field", [["x-a", "1"], ...get], /after a regular field/],
    ["a duplicated :method", [...get.slice(0, 3), [":method", "POST"], ...get.slice(3)], /duplicated :method/],
    ["a duplicated :path", [...get, [":path", "/x"]], /duplicated :path/],
    ["connection", [...get, ["connection", "keep-alive"]], /connection-specific/],
    ["transfer-encoding", [...get, ["transfer-encoding", "chunked"]], /connection-specific/],
    ["te other than trailers", [...get, ["te", "gzip"]], /te other than trailers/],
    ["no :method", get.slice(1), /no :method/],
    ["no :scheme", [get[0], get[2], get[3]], /no :scheme/],
    ["no :path", get.slice(0, 3), /no :path/],
    ["an empty :path", [...get.slice(0, 3), [":path", ""]], /empty :path/],
    ["a relative :path", [...get.slice(0, 3), [":path", "a.B/C"]], /not absolute/],
  ] as Array<[string, HeaderList, RegExp]>) {
    it(`refuses ${why}`, () => {
      expect(requestHeadersProblem(list)).toMatch(problem);
    });
  }
});

describe("trailersProblem", () => {
  it("accepts regular fields and refuses pseudo-headers and bad names", () => {
    expect(trailersProblem([["grpc-status", "0"]])).toBeUndefined();
    expect(trailersProblem([[":path", "/"]])).toMatch(/pseudo-header/);
    expect(trailersProblem([["Grpc-Status", "0"]])).toMatch(/invalid field name/);
  });
});

describe("responseHeadersProblem (an upstream's answer)", () => {
  it("accepts what upstreams send: tabs, obs-text, empty values, set-cookie", () => {
    expect(
      responseHeadersProblem(
        [
          [":status", "200"],
          ["content-type", "application/grpc"],
          ["x-a", "b\tc \u00e9"],
          ["x-empty", ""],
          ["set-cookie", "a=b; Path=/"],
        ],
        false,
      ),
    ).toBeUndefined();
    expect(responseHeadersProblem([["grpc-status", "0"]], true)).toBeUndefined();
  });

  it("names what the gateway could not hand on to its caller", () => {
    const ok: Array<[string, string]> = [[":status", "200"]];
    expect(responseHeadersProblem([...ok, ["x-a", "a\r\nset-cookie: x"]], false)).toBe("invalid value of x-a");
    expect(responseHeadersProblem([...ok, ["x-a", "a\u0000b"]], false)).toBe("invalid value of x-a");
    expect(responseHeadersProblem([...ok, ["x-a", "bell\u0007"]], false)).toBe("invalid value of x-a");
    expect(responseHeadersProblem([...ok, ["x-a", "\u2615"]], false)).toBe("invalid value of x-a");
    expect(responseHeadersProblem([...ok, ["X-A", "b"]], false)).toBe('invalid field name "X-A"');
    expect(responseHeadersProblem([["x-a", "b"]], false)).toBe("no :status");
    expect(responseHeadersProblem([...ok, [":status", "204"]], false)).toBe("duplicated :status");
    expect(responseHeadersProblem([...ok, ["x-a", "b"], [":path", "/"]], false)).toBe(
      "pseudo-header :path after a regular field",
    );
    expect(responseHeadersProblem([[":path", "/"]], false)).toBe("pseudo-header :path in a response");
    expect(responseHeadersProblem([[":status", "200"]], true)).toBe("pseudo-header :status in trailers");
    expect(responseHeadersProblem([["grpc-message", "a\nb"]], true)).toBe("invalid value of grpc-message");
  });
});

describe("parseContentLength", () => {
  it("reads plain decimal integers only", () => {
    expect(parseContentLength("0")).toBe(0);
    expect(parseContentLength("1234")).toBe(1234);
    for (const bad of ["", "-1", "1.5", " 1", "0x10", "1e3", "9".repeat(16)]) expect(parseContentLength(bad)).toBe(-1);
  });
});
