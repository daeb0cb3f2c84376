// Header names that are also names of object properties (`__proto__`, `constructor`, `toString`)
// are plain headers on the proxy path: they reach the upstream exactly as sent, both ways.
import * as http from "node:http";
import * as http2 from "node:http2";
import type * as net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { envelope } from "../src/error-response.js";
import type { Gateway } from "../src/start-gateway.js";
import { rawRequest, startLoneGateway } from "./test-platform.js";

/** A Connect upstream that answers every call with the request headers it received, as JSON pairs. */
let echo: http2.Http2Server;
let gateway: Gateway;

beforeAll(async () => {
  echo = http2.createServer();
  echo.on("stream", (stream, headers) => {
    const seen = JSON.stringify(Object.entries(headers).filter(([name]) => !name.startsWith(":")));
    if (headers[":path"] === "/grpc.health.v1.Health/Check") {
      // No health service here: alive.
      stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "12" }, { endStream: true });
      return;
    }
    if (String(headers["content-type"]).startsWith("application/grpc")) {
      // gRPC: the seen headers as the one message (relayed untouched to a binary caller), with such names as metadata and trailers.
      stream.respond(
        { ":status": 200, "content-type": "application/grpc", ["__proto__"]: "metadata", constructor: "metadata" },
        { waitForTrailers: true },
      );
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0", ["__proto__"]: "trailer" }));
      stream.end(envelope(0, Buffer.from(seen)));
      return;
    }
    stream.respond({ ":status": 200, "content-type": "application/json", ["__proto__"]: "from-upstream" });
    stream.end(seen);
  });
  await new Promise<void>((resolve) => echo.listen(0, "127.0.0.1", resolve));
  gateway = await startLoneGateway({
    upstreams: {
      // A gRPC-only upstream: a gRPC-Web caller's call is translated.
      "portico.auth.v1.AuthService": {
        targets: [`http://127.0.0.1:${(echo.address() as net.AddressInfo).port}`],
        protocol: "grpc",
      },
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

  it("reach a translated upstream, and its metadata and trailers of such names reach the caller", async () => {
    const res = await rawRequest(gateway.url, {
      // PUBLIC; gRPC-Web to a gRPC-only upstream.
      path: "/portico.auth.v1.AuthService/Login",
      headers: { "content-type": "application/grpc-web+proto", ["__proto__"]: "p", constructor: "c", tostring: "t" },
      body: envelope(0, Buffer.alloc(0)),
    });
    expect(res.status).toBe(200);
    const message = res.body.subarray(5, 5 + res.body.readUInt32BE(1));
    const seen = new Map(JSON.parse(message.toString("utf8")) as Array<[string, string]>);
    expect(seen.get("__proto__")).toBe("p");
    expect(seen.get("constructor")).toBe("c");
    expect(seen.get("tostring")).toBe("t");
    expect(Object.getOwnPropertyDescriptor(res.headers, "__proto__")?.value).toBe("metadata");
    expect(Reflect.get(res.headers, "constructor")).toBe("metadata");
    const trailerFrame = res.body.subarray(5 + message.length);
    expect(trailerFrame[0]).toBe(0x80);
    expect(trailerFrame.subarray(5).toString("utf8").split("\r\n")).toEqual(
      expect.arrayContaining(["grpc-status: 0", "__proto__: trailer"]),
    );
  });
});
