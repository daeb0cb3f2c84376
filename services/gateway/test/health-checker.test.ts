import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { checkHealth } from "../src/health-checker.js";
import { createUpstream } from "../src/upstream.js";

const closers: (() => void)[] = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

/** A gRPC upstream whose Health/Check answers one message of `message` bytes and `trailers`. */
async function healthUpstream(message: Buffer, trailers: http2.OutgoingHttpHeaders): Promise<string> {
  const server = http2.createServer();
  server.on("stream", (stream) => {
    stream.resume();
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
    stream.on("wantTrailers", () => stream.sendTrailers(trailers));
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(message.length, 1);
    stream.end(Buffer.concat([prefix, message]));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  closers.push(() => server.close());
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function check(url: string): Promise<string | undefined> {
  const upstream = createUpstream({ service: "test.v1.Service", targets: [url], protocol: "grpc" });
  closers.push(() => upstream.close());
  return checkHealth(upstream, upstream.targets[0] as NonNullable<(typeof upstream.targets)[0]>, {
    timeoutMs: 2000,
    headers: () => ({}),
  });
}

describe("health checks", () => {
  it("count an answer that is not a HealthCheckResponse as a failed check, without taking the gateway down", async () => {
    // A truncated varint: no protobuf decoder accepts it.
    const url = await healthUpstream(Buffer.from([0x08, 0xff, 0xff]), { "grpc-status": "0" });
    const reason = await check(url);
    expect(reason).toMatch(/no HealthCheckResponse/);
  });

  it("read a SERVING answer as healthy", async () => {
    const url = await healthUpstream(Buffer.from([0x08, 0x01]), { "grpc-status": "0" });
    expect(await check(url)).toBeUndefined();
  });
});
