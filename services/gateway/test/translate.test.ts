import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import {
  EchoResponseSchema,
  EchoStreamRequestSchema,
  EchoStreamResponseSchema,
  GreeterService,
} from "@portico/gen/portico/greeter/v1/greeter_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { envelope } from "../src/error-response.js";
import type { Gateway } from "../src/start-gateway.js";
import { bearer, startTestPlatform, type TestPlatform } from "./test-platform.js";
import { stalledH2Client } from "./test-stalled-client.js";

const streamed = { messages: 256, bytes: 256 * 1024 };
/** What the upstream's Echo answers. */
let echoAnswer: "gzip" | "gzip bomb" | "too big" = "gzip";
/** Response messages the upstream managed to send. */
let sent = 0;

/**
 * A gRPC-only upstream on raw node:http2 that sends as fast as its caller lets it: EchoStream
 * answers 256 messages of 256 KiB (64 MiB); Echo answers `echoAnswer`.
 */
const upstream = http2.createServer();
upstream.on("stream", (stream, headers) => {
  stream.resume();
  const path = String(headers[":path"]);
  if (path.startsWith("/grpc.health.v1.Health/")) {
    stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "12" }, { endStream: true });
    return;
  }
  const gzip = path.endsWith("/Echo") && echoAnswer !== "too big";
  stream.respond(
    { ":status": 200, "content-type": "application/grpc", ...(gzip ? { "grpc-encoding": "gzip" } : {}) },
    { waitForTrailers: true },
  );
  stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
  if (path.endsWith("/EchoStream")) {
    const payload = Buffer.alloc(streamed.bytes, 7);
    let i = 0;
    const pump = () => {
      while (i < streamed.messages) {
        const message = toBinary(EchoStreamResponseSchema, create(EchoStreamResponseSchema, { payload, index: i++ }));
        sent++;
        if (!stream.write(envelope(0, Buffer.from(message)))) {
          stream.once("drain", pump);
          return;
        }
      }
      stream.end();
    };
    pump();
    return;
  }
  const hello = Buffer.from(toBinary(EchoResponseSchema, create(EchoResponseSchema, { payload: Buffer.from("hello") })));
  if (echoAnswer === "gzip") stream.end(envelope(1, gzipSync(hello)));
  else if (echoAnswer === "gzip bomb") stream.end(envelope(1, gzipSync(Buffer.alloc(8 * 1024 * 1024))));
  else stream.end(envelope(0, Buffer.alloc(2 * 1024 * 1024)));
});

let platform: TestPlatform;
let gateway: Gateway;
let token = "";

beforeAll(async () => {
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", () => r()));
  platform = await startTestPlatform("gateway_translate_limits");
  gateway = await platform.startGateway({
    maxResponseMessageBytes: 1024 * 1024,
    upstreams: {
      "portico.greeter.v1.GreeterService": {
        targets: [`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`],
        protocol: "grpc",
      },
    },
  });
  ({ token } = await platform.signUp("translate-limits"));
});
afterAll(async () => {
  await gateway?.close();
  await platform?.close();
  upstream.close();
});

describe("translated calls", () => {
  it("stream a large response to a caller that does not read, holding the upstream back", async () => {
    const body = envelope(0, Buffer.from(toBinary(EchoStreamRequestSchema, create(EchoStreamRequestSchema, { count: 1 }))));
    sent = 0;
    const client = await stalledH2Client(gateway.port, [
      {
        headers: [
          [":method", "POST"],
          [":scheme", "http"],
          [":authority", "gateway"],
          [":path", "/portico.greeter.v1.GreeterService/EchoStream"],
          ["content-type", "application/grpc-web+proto"],
          ["authorization", `Bearer ${token}`],
        ],
        body,
      },
    ]);
    // Until the upstream is stopped (or has sent everything).
    let last = -1;
    for (let still = 0; still < 4 && sent < streamed.messages; ) {
      await new Promise((r) => setTimeout(r, 250));
      still = sent === last ? still + 1 : 0;
      last = sent;
    }
    client.close();
    // Everything the gateway holds came from the upstream: without back-pressure it would take all
    // 64 MiB (and hold what the caller's socket cannot take); with it, the windows stop the upstream.
    expect(sent * streamed.bytes).toBeLessThan(24 * 1024 * 1024);
  });

  it("decompresses a gzip response for a JSON caller, and refuses one that inflates past the limit", async () => {
    const json = createClient(GreeterService, createConnectTransport({ baseUrl: gateway.url, httpVersion: "2" }));
    echoAnswer = "gzip";
    const res = await json.echo({ payload: Buffer.from("x") }, { headers: bearer(token) });
    expect(Buffer.from(res.payload).toString()).toBe("hello");
    echoAnswer = "gzip bomb";
    await expect(json.echo({ payload: Buffer.from("x") }, { headers: bearer(token) })).rejects.toMatchObject({
      code: Code.ResourceExhausted,
    });
  });

  it("refuses a response message larger than maxResponseMessageBytes", async () => {
    echoAnswer = "too big";
    const grpcWeb = createClient(GreeterService, createGrpcWebTransport({ baseUrl: gateway.url, httpVersion: "2" }));
    await expect(grpcWeb.echo({ payload: Buffer.from("x") }, { headers: bearer(token) })).rejects.toMatchObject({
      code: Code.ResourceExhausted,
      rawMessage: expect.stringContaining("exceeds the limit of 1048576 bytes"),
    });
  });
});

describe("a gRPC-Web upstream's trailer frame", () => {
  /** The trailer block the gRPC-Web upstream below ends its Echo answer with. */
  let trailerBlock = "";
  const webUpstream = http2.createServer();
  webUpstream.on("stream", (stream, headers) => {
    stream.resume();
    if (String(headers[":path"]).startsWith("/grpc.health.v1.Health/")) {
      stream.respond({ ":status": 200, "content-type": "application/grpc-web+proto", "grpc-status": "12" }, { endStream: true });
      return;
    }
    stream.respond({ ":status": 200, "content-type": "application/grpc-web+proto" });
    const hello = Buffer.from(toBinary(EchoResponseSchema, create(EchoResponseSchema, { payload: Buffer.from("hi") })));
    stream.end(Buffer.concat([envelope(0, hello), envelope(0x80, Buffer.from(trailerBlock))]));
  });
  let webGateway: Gateway;
  beforeAll(async () => {
    await new Promise<void>((r) => webUpstream.listen(0, "127.0.0.1", () => r()));
    webGateway = await platform.startGateway({
      upstreams: {
        "portico.greeter.v1.GreeterService": {
          targets: [`http://127.0.0.1:${(webUpstream.address() as AddressInfo).port}`],
          protocol: "grpc-web",
        },
      },
    });
  });
  afterAll(() => {
    webUpstream.close();
  });
  const connect = () => createClient(GreeterService, createConnectTransport({ baseUrl: webGateway.url, httpVersion: "2" }));

  it("carries the upstream's status and message to a Connect caller, from CRLF and from bare-LF lines", async () => {
    trailerBlock = "grpc-status: 5\r\ngrpc-message: no%20such%20greeting\r\n";
    await expect(connect().echo({ payload: Buffer.from("x") }, { headers: bearer(token) })).rejects.toMatchObject({
      code: Code.NotFound,
      rawMessage: "no such greeting",
    });
    // A lenient server's LF lines: before, the whole block was read as one grpc-status line and the message was lost.
    trailerBlock = "Grpc-Status: 5\ngrpc-message: no%20such%20greeting\n";
    await expect(connect().echo({ payload: Buffer.from("x") }, { headers: bearer(token) })).rejects.toMatchObject({
      code: Code.NotFound,
      rawMessage: "no such greeting",
    });
  });

  it("answers a trailer field that is no valid header value with an error at once, not the deadline", async () => {
    trailerBlock = "grpc-status: 0\r\nx-mood: caf\u00e9 \u2615\r\n";
    const started = Date.now();
    await expect(connect().echo({ payload: Buffer.from("x") }, { headers: bearer(token) })).rejects.toMatchObject({
      code: Code.Internal,
      rawMessage: expect.stringContaining("x-mood"),
    });
    // The call's deadline is 10 s: an answer within it came from the gateway's check, not the timer.
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("hands the upstream's trailing metadata to the caller and its answer when the status is OK", async () => {
    trailerBlock = "grpc-status: 0\r\nx-served-by: web-upstream\r\n";
    let served: string | null = null;
    const res = await connect().echo(
      { payload: Buffer.from("x") },
      { headers: bearer(token), onTrailer: (t) => (served = t.get("x-served-by")) },
    );
    expect(Buffer.from(res.payload).toString()).toBe("hi");
    expect(served).toBe("web-upstream");
  });
});
