// Header names that are also names of object properties (`__proto__`, `constructor`, `toString`)
// are plain headers on the proxy path: they reach the upstream exactly as sent, both ways.
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { ListLanguagesResponseSchema } from "@portico/gen/portico/lang/v1/lang_pb.js";
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
      if (headers[":path"] === "/portico.lang.v1.LanguageService/ListLanguages") {
        // A REST call, sent on as gRPC: the seen headers as languages (code: name, name: value).
        const pairs = JSON.parse(seen) as Array<[string, string]>;
        const languages = pairs.map(([code, name]) => ({ code, name: String(name) }));
        const message = toBinary(ListLanguagesResponseSchema, create(ListLanguagesResponseSchema, { languages }));
        stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
        stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
        stream.end(envelope(0, Buffer.from(message)));
        return;
      }
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

/** One HTTP/1.1 request written byte for byte on a raw socket (`connection: close`); the answer's status and body. */
function rawHttp1(head: string, body = ""): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port: gateway.port }, () => {
      socket.write(`${head}content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    });
    const chunks: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("close", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const end = text.indexOf("\r\n\r\n");
      let rest = text.slice(end + 4);
      if (/^transfer-encoding: chunked/im.test(text.slice(0, end))) {
        let joined = "";
        for (;;) {
          const eol = rest.indexOf("\r\n");
          const size = Number.parseInt(rest.slice(0, eol), 16);
          if (!(size > 0)) break;
          joined += rest.slice(eol + 2, eol + 2 + size);
          rest = rest.slice(eol + 4 + size);
        }
        rest = joined;
      }
      resolve({ status: Number(text.slice(9, 12)), body: rest });
    });
  });
}

/** Header lines a raw HTTP/1.1 client may send but node's own client and parser turn into object keys. */
const propertyNamedLines = "__proto__: p\r\nConstructor: c\r\ntoString: t\r\nhasOwnProperty: h1\r\nhasownproperty: h2\r\n";

function expectPropertyNamed(seen: Map<string, string>): void {
  expect(seen.get("__proto__")).toBe("p");
  expect(seen.get("constructor")).toBe("c");
  expect(seen.get("tostring")).toBe("t");
  // Duplicates joined as node joins them, as on the HTTP/2 path.
  expect(seen.get("hasownproperty")).toBe("h1, h2");
}

describe("header names that are object property names", () => {
  it("reach the upstream as sent over a raw HTTP/1.1 connection, `__proto__` included", async () => {
    const res = await rawHttp1(
      `POST /portico.lang.v1.LanguageService/ListLanguages HTTP/1.1\r\nhost: a\r\ncontent-type: application/json\r\n${propertyNamedLines}`,
      "{}",
    );
    expect(res.status).toBe(200);
    expectPropertyNamed(new Map(JSON.parse(res.body) as Array<[string, string]>));
  });

  it("reach the upstream of a REST call over a raw HTTP/1.1 connection, `__proto__` included", async () => {
    const res = await rawHttp1(`GET /v1/languages HTTP/1.1\r\nhost: a\r\n${propertyNamedLines}`);
    expect(res.status).toBe(200);
    const { languages } = JSON.parse(res.body) as { languages: Array<{ code: string; name: string }> };
    expectPropertyNamed(new Map(languages.map((l) => [l.code, l.name])));
  });

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
