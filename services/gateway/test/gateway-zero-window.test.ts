import * as http2 from "node:http2";
import * as net from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { EchoStreamRequestSchema, EchoStreamResponseSchema, GreeterService } from "@portico/gen/portico/greeter/v1/greeter_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { envelope } from "../src/error-response.js";
import { CLIENT_PREFACE, createHpackEncoder, FrameFlag, FrameType, frame, SettingId, settingsFrame } from "../src/h2/index.js";
import type { Gateway } from "../src/start-gateway.js";
import { bearer, startTestPlatform, type TestPlatform } from "./test-platform.js";

// A caller that shuts its HTTP/2 window (a zero-window reader, W8's attack) must cost the upstream
// little and must not hold back the other callers sharing the gateway's upstream connection.

const messages = 2000;
/** Response messages the upstream's writes took, per caller (its x-request-id, kept as x-client-request-id). */
const produced = new Map<string, number>();

/** A connect-style upstream on raw node:http2 whose EchoStream writes 1 KiB messages as fast as it is let. */
const upstream = http2.createServer();
upstream.on("stream", (stream, headers) => {
  stream.resume();
  stream.on("error", () => {});
  if (String(headers[":path"]).startsWith("/grpc.health.v1.Health/")) {
    stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "12" }, { endStream: true });
    return;
  }
  const caller = String(headers["x-client-request-id"] ?? "");
  stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
  stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
  const payload = Buffer.alloc(1024, 7);
  let i = 0;
  const pump = () => {
    while (i < messages && !stream.destroyed) {
      const message = toBinary(EchoStreamResponseSchema, create(EchoStreamResponseSchema, { payload, index: i++ }));
      produced.set(caller, i);
      if (!stream.write(envelope(0, Buffer.from(message)))) {
        stream.once("drain", pump);
        return;
      }
    }
    if (!stream.destroyed) stream.end();
  };
  pump();
});

let platform: TestPlatform;
let gateway: Gateway;
let token = "";

beforeAll(async () => {
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", () => r()));
  platform = await startTestPlatform("gateway_zero_window");
  gateway = await platform.startGateway({
    upstreams: {
      "portico.greeter.v1.GreeterService": {
        targets: [`http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}`],
        protocol: "connect",
      },
    },
  });
  ({ token } = await platform.signUp("zero-window"));
});
afterAll(async () => {
  await gateway?.close();
  await platform?.close();
  upstream.close();
});

/** Raw h2c: SETTINGS_INITIAL_WINDOW_SIZE 0, then `streams` EchoStream calls; the socket is never read. */
function zeroWindowCaller(port: number, streams: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port }, () => {
      const hpack = createHpackEncoder();
      const body = envelope(0, Buffer.from(toBinary(EchoStreamRequestSchema, create(EchoStreamRequestSchema, { count: 1 }))));
      const out = [CLIENT_PREFACE, settingsFrame([[SettingId.initialWindowSize, 0]])];
      for (let i = 0; i < streams; i++) {
        const block = hpack.encode([
          [":method", "POST"],
          [":scheme", "http"],
          [":authority", "gateway"],
          [":path", "/portico.greeter.v1.GreeterService/EchoStream"],
          ["content-type", "application/grpc"],
          ["te", "trailers"],
          ["authorization", `Bearer ${token}`],
          ["x-request-id", `stalled-${i}`],
        ]);
        out.push(frame(FrameType.headers, FrameFlag.endHeaders, 2 * i + 1, block));
        out.push(frame(FrameType.data, FrameFlag.endStream, 2 * i + 1, body));
      }
      socket.write(Buffer.concat(out));
      socket.pause();
      resolve(socket);
    });
    socket.on("error", reject);
  });
}

describe("a caller with a shut window", { timeout: 30_000 }, () => {
  it("gets only the upstream's small initial window produced for it, and the others stream in full", async () => {
    produced.clear();
    const stalled = await zeroWindowCaller(gateway.port, 20);
    try {
      // Until every stalled stream reached the upstream and the upstream stopped producing for them.
      let last = -1;
      for (let still = 0; still < 3; ) {
        await new Promise((r) => setTimeout(r, 200));
        const total = [...produced.values()].reduce((a, b) => a + b, 0);
        still = produced.size === 20 && total === last ? still + 1 : 0;
        last = total;
      }
      // Another caller on the same gateway (and the same upstream connection) gets all of its answer.
      const client = createClient(GreeterService, createGrpcTransport({ baseUrl: gateway.url }));
      let received = 0;
      for await (const _ of client.echoStream({ count: 1 }, { headers: { ...bearer(token), "x-request-id": "reader" } })) {
        received++;
      }
      expect(received).toBe(messages);
      // 16 KiB of window and node's 16 KiB write buffer: about 32 messages of 1 KiB each, where a
      // stream window the size of a reader's (256 KiB) would let it produce about 270.
      for (let i = 0; i < 20; i++) expect(produced.get(`stalled-${i}`)).toBeLessThan(64);
    } finally {
      stalled.destroy();
    }
  });
});
