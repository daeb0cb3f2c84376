import * as net from "node:net";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { GreeterService } from "@portico/gen/portico/greeter/v1/greeter_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, startTestPlatform, type TestPlatform } from "./test-platform.js";

let platform: TestPlatform;
let port = 0;

beforeAll(async () => {
  platform = await startTestPlatform("gateway_http1_timeout", { headersTimeoutMs: 500 });
  port = platform.gateway.port;
});
afterAll(async () => {
  await platform?.close();
});

interface RawHttp1 {
  /** Everything the gateway sent before it closed the connection. */
  received: Promise<string>;
  /** ms from connect to close. */
  closedAfter: Promise<number>;
  socket: net.Socket;
}

/** A raw TCP connection to the gateway that writes `text` and then nothing. */
function rawHttp1(text: string): Promise<RawHttp1> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port }, () => {
      const started = Date.now();
      const chunks: Buffer[] = [];
      socket.on("data", (c: Buffer) => chunks.push(c));
      const closed = new Promise<void>((r) => socket.on("close", () => r()));
      socket.on("error", () => {});
      if (text !== "") socket.write(text);
      resolve({
        socket,
        received: closed.then(() => Buffer.concat(chunks).toString("latin1")),
        closedAfter: closed.then(() => Date.now() - started),
      });
    });
    socket.once("error", reject);
  });
}

describe("HTTP/1.1 slow clients", () => {
  it("answers 408 and closes a connection that never finishes its request headers, serving others meanwhile", async () => {
    const { token } = await platform.signUp("slowloris");
    const slow = await rawHttp1("POST /x HTTP/1.1\r\nHost: a\r\n");

    // Another connection is served normally while the slow one hangs.
    const greeter = createClient(GreeterService, createConnectTransport({ baseUrl: platform.gateway.url, httpVersion: "1.1" }));
    const t0 = Date.now();
    const res = await greeter.echo({ payload: new Uint8Array([1, 2, 3]) }, { headers: bearer(token) });
    expect(res.payload).toEqual(new Uint8Array([1, 2, 3]));
    expect(Date.now() - t0).toBeLessThan(2000);
    // Answered while the slow connection is still waiting for its headers timeout.
    expect(slow.socket.destroyed).toBe(false);

    const text = await slow.received;
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    expect(text.toLowerCase()).toContain("connection: close");
    // Closed by the gateway within the headers timeout and the connection check interval.
    const after = await slow.closedAfter;
    expect(after).toBeGreaterThanOrEqual(450);
    expect(after).toBeLessThan(3000);
    expect(slow.socket.destroyed || slow.socket.readableEnded).toBe(true);
  });

  it("answers 408 to a request line that never ends", async () => {
    const slow = await rawHttp1("POST /portico.greeter.v1.GreeterService/Echo HTT");
    const text = await slow.received;
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    expect(await slow.closedAfter).toBeLessThan(3000);
  });

  it("drops a connection that sends nothing at all within the timeout, without an answer", async () => {
    const silent = await rawHttp1("");
    expect(await silent.received).toBe("");
    const after = await silent.closedAfter;
    expect(after).toBeGreaterThanOrEqual(450);
    expect(after).toBeLessThan(3000);
  });

  it("serves a keep-alive connection's second request after the first completed (the timeout is per request)", async () => {
    const conn = await rawHttp1("GET /healthz-not-a-route HTTP/1.1\r\nHost: a\r\n\r\n");
    await new Promise((r) => setTimeout(r, 700));
    conn.socket.write("GET /healthz-not-a-route HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    const text = await conn.received;
    const statusLines = text.match(/^HTTP\/1\.1 \d{3}/gm) ?? [];
    expect(statusLines).toHaveLength(2);
    expect(statusLines.some((l) => l.endsWith("408"))).toBe(false);
  });
});
