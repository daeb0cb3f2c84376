import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DescService } from "@bufbuild/protobuf";
import { beforeAll, describe, expect, it } from "vitest";
import { loadImage } from "../src/load-image.js";
import { httpBindingsOf } from "../src/rest/http-rule.js";
import { buildTestImage, repoRoot } from "./test-rest-image.js";

// An invalid google.api.http binding fails `npm run generate` (and the gateway's start) with the
// method and the reason: buf accepts the option, the binding parser the gateway and the OpenAPI
// generator share does not.

const proto = `syntax = "proto3";
package bad.v1;
import "google/api/annotations.proto";

service BadService {
  rpc MissingField(Req) returns (Req) { option (google.api.http) = {get: "/v1/things/{thing_id}"}; }
  rpc RepeatedVariable(Req) returns (Req) { option (google.api.http) = {get: "/v1/tags/{tags}"}; }
  rpc BodyOnGet(Req) returns (Req) { option (google.api.http) = {get: "/v1/req" body: "*"}; }
  rpc BadTemplate(Req) returns (Req) { option (google.api.http) = {get: "v1/no-slash"}; }
  rpc NoBodyField(Req) returns (Req) { option (google.api.http) = {post: "/v1/req" body: "payload"}; }
  rpc NoResponseField(Req) returns (Req) { option (google.api.http) = {get: "/v1/req/{name}" response_body: "nope"}; }
  rpc Upload(stream Req) returns (Req) { option (google.api.http) = {post: "/v1/upload" body: "*"}; }
  rpc DoubleStar(Req) returns (Req) { option (google.api.http) = {get: "/v1/{name=**}/tail"}; }
}
message Req {
  string name = 1;
  repeated string tags = 2;
}
`;

let image: string;
let methods: DescService["methods"];

beforeAll(() => {
  image = buildTestImage("bad/v1/bad.proto", proto);
  methods = (loadImage(image).registry.getService("bad.v1.BadService") as DescService).methods;
});

const failure = (name: string) => {
  const method = methods.find((m) => m.name === name);
  if (method === undefined) throw new Error(`no method ${name}`);
  try {
    httpBindingsOf(method);
  } catch (error) {
    return (error as Error).message;
  }
  return "accepted";
};

describe("invalid google.api.http bindings", () => {
  it("names the method, the binding and the reason", () => {
    expect(failure("MissingField")).toBe(
      'bad.v1.BadService.MissingField: google.api.http GET "/v1/things/{thing_id}": path variable {thing_id}: bad.v1.Req has no field "thing_id"',
    );
    expect(failure("RepeatedVariable")).toMatch(
      /RepeatedVariable: .*path variable \{tags\} must be a singular scalar or enum field, not a repeated field/,
    );
    expect(failure("BodyOnGet")).toMatch(/BodyOnGet: .*a GET binding cannot have a body/);
    expect(failure("BadTemplate")).toMatch(/BadTemplate: .*path template "v1\/no-slash" must start with "\/"/);
    expect(failure("NoBodyField")).toMatch(/NoBodyField: .*body: bad.v1.Req has no field "payload"/);
    expect(failure("NoResponseField")).toMatch(/NoResponseField: .*response_body: bad.v1.Req has no field "nope"/);
    expect(failure("Upload")).toMatch(/Upload: .*a client-streaming method cannot be served over REST/);
    expect(failure("DoubleStar")).toMatch(/DoubleStar: .*"\*\*" must be the last segment/);
  });

  it("fails the OpenAPI step of npm run generate with one line naming the first", () => {
    const out = join(mkdtempSync(join(tmpdir(), "portico-openapi-")), "openapi.json");
    const run = spawnSync(
      process.execPath,
      ["--conditions=source", "--import", "tsx", join(repoRoot, "scripts/generate-openapi.ts"), image, out],
      { cwd: repoRoot, encoding: "utf8" },
    );
    expect(run.status).toBe(1);
    expect(run.stderr.trim()).toBe(
      'npm run generate: bad.v1.BadService.MissingField: google.api.http GET "/v1/things/{thing_id}": path variable {thing_id}: bad.v1.Req has no field "thing_id"',
    );
    expect(existsSync(out)).toBe(false);
  });
});
