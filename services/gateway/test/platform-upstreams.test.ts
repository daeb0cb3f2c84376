import { platform } from "@portico/kit";
import { describe, expect, it } from "vitest";
import { platformUpstreams } from "../src/platform-upstreams.js";

describe("the gateway's default upstreams", () => {
  it("route every proto service of portico.services.json to its service's port", () => {
    const upstreams = platformUpstreams({});
    for (const service of platform.services) {
      for (const name of service.protoServices) {
        expect(upstreams[name]).toEqual({ targets: [`http://127.0.0.1:${service.port}`], protocol: "connect" });
      }
    }
    expect(upstreams["portico.greeter.v1.GreeterService"]).toBeDefined();
  });

  it("follow a service moved by <SERVICE>_PORT or <SERVICE>_URL", () => {
    const upstreams = platformUpstreams({ GREETER_PORT: "19082", LANG_URL: "http://lang.internal:9000" });
    expect(upstreams["portico.greeter.v1.GreeterService"]?.targets).toEqual(["http://127.0.0.1:19082"]);
    expect(upstreams["portico.lang.v1.LanguageService"]?.targets).toEqual(["http://lang.internal:9000"]);
  });

  it("take every replica a <SERVICE>_URL lists", () => {
    const upstreams = platformUpstreams({ LANG_URL: "http://lang-0:9000,http://lang-1:9000" });
    expect(upstreams["portico.lang.v1.LanguageService"]?.targets).toEqual(["http://lang-0:9000", "http://lang-1:9000"]);
  });
});
