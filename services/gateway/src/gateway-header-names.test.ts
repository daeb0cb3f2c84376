// Header names that are also names of object properties (`__proto__`, `constructor`, `toString`)
// are plain headers on the proxy path: they reach the upstream exactly as sent, both ways.
import * as http from "node:http";
import * as http2 from "node:http2";
import type * as net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Gateway } from "./start-gateway.js";
import { rawRequest, startLoneGateway } from "./test-platform.js";

/** A Connect upstream that answers every call with the request headers it received, as JSON pairs. */
let echo: http2.Http2Server;
let gateway: Gateway;

beforeAll(async () => {
  echo = http2.createServer();
  echo.on("stream", (stream, headers) => {
    const seen = Object.entries(headers).filter(([name]) => !name.startsWith(":"));
    stream.respond({ ":status": 200, "content-type": "application/json", ["__proto__"]: "from-upstream" });
    stream.end(JSON.stringify(seen));
  });
  await new Promise<void>((resolve) => echo.listen(0, "127.0.0.1", resolve));
  gateway = await startLoneGateway({
    upstreams: {
      "portico.lang.v1.LanguageService": {
        targets: [`http://127.0.0.1:${(echo.address() as net.AddressInfo).port}`],
        protocol: "connect",
      },
    },
  });
});
afterAll(async () => {
  await gateway?.close();
  await new Promise((resolve) => echo?.close(resolve));
});

describe("header names that are object property names", () => {
  it("reach the upstream exactly as the caller sent them, and come back", async () => {
    const res = await rawRequest(gateway.url, {
      // PUBLIC: no token needed.
      path: "/portico.lang.v1.LanguageService/ListLanguages",
      headers: {
        "content-type": "application/json",
        ["__proto__"]: "p",
        constructor: "c",
        tostring: "t",
        hasownproperty: "h",
      },
      body: "{}",
    });
    expect(res.status).toBe(200);
    const seen = new Map(JSON.parse(res.body.toString("utf8")) as Array<[string, string]>);
    expect(seen.get("__proto__")).toBe("p");
    expect(seen.get("constructor")).toBe("c");
    expect(seen.get("tostring")).toBe("t");
    expect(seen.get("hasownproperty")).toBe("h");
    expect(Object.getOwnPropertyDescriptor(res.headers, "__proto__")?.value).toBe("from-upstream");
  });

  it("reach the upstream as sent over HTTP/1.1 too", async () => {
    const res = await new Promise<{ headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
      const req = http.request(
        `${gateway.url}/portico.lang.v1.LanguageService/ListLanguages`,
        { method: "POST", headers: { "content-type": "application/json", constructor: "c", tostring: "t" } },
        (response) => {
          let body = "";
          response.setEncoding("utf8");
          response.on("data", (chunk: string) => {
            body += chunk;
          });
          response.on("end", () => resolve({ headers: response.headersDistinct, body }));
        },
      );
      req.on("error", reject);
      req.end("{}");
    });
    const seen = new Map(JSON.parse(res.body) as Array<[string, string]>);
    expect(seen.get("constructor")).toBe("c");
    expect(seen.get("tostring")).toBe("t");
    expect(Object.getOwnPropertyDescriptor(res.headers, "__proto__")?.value).toEqual(["from-upstream"]);
  });
});
