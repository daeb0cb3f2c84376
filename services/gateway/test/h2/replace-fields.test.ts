import { describe, expect, it } from "vitest";
import type { HeaderList } from "../../src/h2/hpack.js";
import { replaceFields } from "../../src/h2/replace-fields.js";

describe("replaceFields", () => {
  it("drops the named fields and every earlier value of a field it sets, keeping the rest in order", () => {
    const list: HeaderList = [
      [":method", "POST"],
      [":path", "/a.B/C"],
      ["content-type", "application/grpc-web-text"],
      ["content-length", "12"],
      ["x-a", "1"],
      ["content-type", "application/grpc-web-text+proto"],
      ["x-b", "2"],
    ];
    replaceFields(list, new Set(["content-length"]), [["content-type", "application/grpc-web+proto"]]);
    expect(list).toEqual([
      [":method", "POST"],
      [":path", "/a.B/C"],
      ["x-a", "1"],
      ["x-b", "2"],
      ["content-type", "application/grpc-web+proto"],
    ]);
  });

  it("hands out copies of what it sets: a later edit of the list leaves the caller's fields alone", () => {
    const set: HeaderList = [["te", "trailers"]];
    const list: HeaderList = [];
    replaceFields(list, new Set(), set);
    (list[0] as [string, string])[1] = "changed";
    expect(set).toEqual([["te", "trailers"]]);
  });
});
