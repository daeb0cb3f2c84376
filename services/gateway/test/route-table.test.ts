// The route table's service order: by code point, without ICU's collator (whose first use keeps
// about 2.5 MB of the node binary's ICU data resident in the gateway for good).
import { create, createFileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { afterEach, describe, expect, it } from "vitest";
import { defaultImagePath, loadImage } from "../src/load-image.js";
import { servicesOf } from "../src/route-table.js";

const localeCompare = String.prototype.localeCompare;
afterEach(() => {
  String.prototype.localeCompare = localeCompare;
});

describe("servicesOf", () => {
  it("sorts by code point: an upper-case name before a lower-case one", () => {
    const file = create(FileDescriptorProtoSchema, {
      name: "acme.proto",
      package: "acme.v1",
      syntax: "proto3",
      service: [{ name: "alpha" }, { name: "Zeta" }, { name: "Beta" }],
    });
    expect(servicesOf(createFileRegistry(file, () => undefined)).map((s) => s.typeName)).toEqual([
      "acme.v1.Beta",
      "acme.v1.Zeta",
      "acme.v1.alpha",
    ]);
  });

  it("sorts the platform's image without a locale-aware comparison", () => {
    const { registry } = loadImage(defaultImagePath());
    String.prototype.localeCompare = () => {
      throw new Error("localeCompare called");
    };
    const names = servicesOf(registry).map((s) => s.typeName);
    expect(names).toContain("portico.greeter.v1.GreeterService");
    expect(names).toEqual([...names].sort());
  });
});
