import { describe, expect, it } from "vitest";
import { parsePlatformDefinition, platform, servicePorts, serviceUrls } from "../src/index.js";

const valid = {
  gateway: { port: 7000, adminPort: 7001 },
  services: {
    auth: { port: 7002, protoServices: ["portico.auth.v1.AuthService"], database: "auth" },
    shop: { port: 7003, protoServices: ["acme.shop.v1.ShopService"], calls: ["auth"] },
  },
};

describe("the platform definition", () => {
  it("is the repository's portico.services.json: every service's default port and address come from it", () => {
    expect(servicePorts.gateway).toBe(platform.gateway.port);
    for (const service of platform.services) {
      expect(servicePorts[service.name]).toBe(service.port);
      expect(serviceUrls(service.name, {})).toEqual([`http://127.0.0.1:${service.port}`]);
    }
    expect(platform.services.map((s) => s.name)).toEqual(expect.arrayContaining(["auth", "greeter", "lang"]));
  });

  it("takes a service's replicas from <NAME>_URL as a comma-separated list, and names a bad entry", () => {
    expect(serviceUrls("lang", { LANG_URL: "http://lang-0:8083, https://lang-1:8443/" })).toEqual([
      "http://lang-0:8083",
      "https://lang-1:8443",
    ]);
    expect(serviceUrls("lang", { LANG_URL: "http://lang:8083", LANG_PORT: "9" })).toEqual(["http://lang:8083"]);
    expect(() => serviceUrls("lang", { LANG_URL: "http://lang-0:8083,lang-1:8083" })).toThrow(/LANG_URL="lang-1:8083"/);
  });

  it("keeps the file's order and fills in what is optional", () => {
    const definition = parsePlatformDefinition(valid);
    expect(definition.services).toEqual([
      { name: "auth", port: 7002, protoServices: ["portico.auth.v1.AuthService"], database: "auth", calls: [] },
      { name: "shop", port: 7003, protoServices: ["acme.shop.v1.ShopService"], calls: ["auth"] },
    ]);
  });

  it("holds the gateway's node flags, none when the file names none", () => {
    expect(parsePlatformDefinition(valid).gateway).toEqual({ port: 7000, adminPort: 7001, nodeFlags: [] });
    const flags = ["--single-threaded-gc", "--max-semi-space-size=4"];
    expect(parsePlatformDefinition({ ...valid, gateway: { ...valid.gateway, nodeFlags: flags } }).gateway.nodeFlags).toEqual(
      flags,
    );
  });

  it("holds the node flags every backend runs with, none when the file names none", () => {
    expect(parsePlatformDefinition(valid).serviceNodeFlags).toEqual([]);
    const flags = ["--heap-growing-percent=300"];
    expect(parsePlatformDefinition({ ...valid, serviceNodeFlags: flags }).serviceNodeFlags).toEqual(flags);
    expect(() => parsePlatformDefinition({ ...valid, serviceNodeFlags: ["--heap-growing-percent 300"] })).toThrow(
      /serviceNodeFlags\[0\]: .* is not one node option/,
    );
  });

  it.each(["--max-semi-space-size 4", "-e", "--inspect=0.0.0.0:9229;rm", '--title="x"', "main.js"])(
    "refuses a gateway node flag a command line would split or that is no option: %s",
    (flag) => {
      expect(() => parsePlatformDefinition({ ...valid, gateway: { ...valid.gateway, nodeFlags: [flag] } })).toThrow(
        /gateway\.nodeFlags\[0\]: .* is not one node option/,
      );
    },
  );

  it.each([
    [{ ...valid, gateway: { port: 7000, adminPort: 70000 } }, /gateway\.adminPort: 70000 is not a port/],
    [
      { ...valid, services: { ...valid.services, shop: { port: 7002 } } },
      /services\.shop\.port: port 7002 is already services\.auth\.port's/,
    ],
    [{ ...valid, services: { "Bad-Name": { port: 7005 } } }, /services\.Bad-Name: a service name is lower-case/],
    [
      { ...valid, services: { shop: { port: 7005, protoServices: ["ShopService"] } } },
      /"ShopService" is not a fully-qualified proto service/,
    ],
    [
      { ...valid, services: { shop: { port: 7005, calls: ["billing"] } } },
      /services\.shop\.calls: "billing" is not a service of the platform/,
    ],
  ])("refuses a bad definition with a message naming the field (%#)", (json, message) => {
    expect(() => parsePlatformDefinition(json, "portico.services.json")).toThrow(message);
  });
});
