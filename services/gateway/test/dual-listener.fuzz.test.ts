// Property-based tests of the gateway's public port: HTTP/1.1 framing and hostile h2c (`npm run fuzz` runs them longer).
import * as net from "node:net";
import { createLogger } from "@portico/kit";
import { createTestKeys } from "@portico/kit/testing";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { CLIENT_PREFACE, settingsFrame } from "../src/h2/index.js";
import { type Gateway, startGateway } from "../src/start-gateway.js";
import { expectGoawayOrWorking, hostileFrame, rawPeer, SETTLE_MS, sleep } from "./h2/test-hostile-frames.js";
import { itHolds, watchEscapes } from "./test-fuzz.js";

let gateway: Gateway;
/** Errors that escaped to the process while a property ran. */
const escapes = watchEscapes();
const escaped = escapes.errors;

beforeAll(async () => {
  // Upstreams that refuse connections: every routed call ends in the gateway's own answer.
  const closed = net.createServer();
  await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
  const nowhere = `http://127.0.0.1:${(closed.address() as net.AddressInfo).port}`;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  gateway = await startGateway({
    port: 0,
    host: "127.0.0.1",
    adminPort: 0,
    adminHost: "127.0.0.1",
    identity: createTestKeys().identity("gateway"),
    logger: createLogger({ service: "gateway", level: "silent" }),
    accessLog: false,
    shutdownGraceMs: 100,
    headersTimeoutMs: 2000,
    upstreams: {
      "portico.auth.v1.AuthService": { targets: [nowhere], protocol: "connect" },
      "portico.greeter.v1.GreeterService": { targets: [nowhere], protocol: "connect" },
    },
  });
});

afterAll(async () => {
  await gateway?.close();
  escapes.stop();
});

interface Exchange {
  /** Everything the gateway sent back. */
  received: Buffer;
  /** The gateway closed the connection (after the client's end at the latest). */
  closed: boolean;
}

/**
 * Sends `bytes` on a new connection to the public port, reads until the gateway closes or goes
 * quiet, then ends the client side and waits for the close.
 */
async function exchange(bytes: Buffer): Promise<Exchange> {
  const socket = net.connect({ port: gateway.port, host: "127.0.0.1" });
  socket.on("error", () => {});
  const chunks: Buffer[] = [];
  let closed = false;
  let lastData = Date.now();
  socket.on("data", (chunk: Buffer) => {
    chunks.push(chunk);
    lastData = Date.now();
  });
  socket.on("close", () => {
    closed = true;
  });
  await new Promise<void>((resolve) => socket.once("connect", resolve));
  socket.write(bytes);
  const started = Date.now();
  while (!closed && Date.now() - started < 1500 && !(chunks.length > 0 && Date.now() - lastData > 25)) await sleep(5);
  if (!closed) socket.end();
  const ended = Date.now();
  while (!closed && Date.now() - ended < SETTLE_MS) await sleep(5);
  socket.destroy();
  return { received: Buffer.concat(chunks), closed };
}

/** The status codes of the responses, in order; the bytes must begin with a status line. */
function statuses(received: Buffer): number[] {
  const text = received.toString("latin1");
  if (text.length === 0) return [];
  expect(text, "the answer is not an HTTP/1.1 response").toMatch(/^HTTP\/1\.1 \d{3} /);
  return [...text.matchAll(/(?:^|\r\n)HTTP\/1\.1 (\d{3}) /g)].map((match) => Number(match[1]));
}

/** The gateway still serves: a plain request on a new connection gets its answer. */
async function expectStillServing(): Promise<void> {
  const { received } = await exchange(
    Buffer.from("GET /no.such.Service/Method HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"),
  );
  expect(statuses(received)).toEqual([501]);
}

// --- requests as an attacker writes them: almost HTTP/1.1 ---

/** Mostly `usual`, now and then `odd`: most requests are valid enough to reach the proxy. */
const mostly = <T>(usual: fc.Arbitrary<T>, odd: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 6, arbitrary: usual }, { weight: 1, arbitrary: odd });
const token = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}$/);
const method = mostly(
  fc.constantFrom("POST", "POST", "GET", "OPTIONS"),
  fc.oneof(fc.constantFrom("HEAD", "PUT", "CONNECT", "PRI", "", "G ET", "get"), token),
);
const target = mostly(
  fc.constantFrom(
    "/portico.greeter.v1.GreeterService/Greet",
    "/portico.greeter.v1.GreeterService/StreamGreetings",
    "/portico.auth.v1.AuthService/Authenticate",
    "/portico.auth.v1.AuthService/SignUp",
    "/portico.greeter.v1.GreeterService/Greet?encoding=json&message=%7B%7D&connect=v1",
    "/",
    "/index.html",
  ),
  fc.oneof(
    fc.constantFrom("*", "http://example.com/", "/%00", "/../../etc/passwd", "", "//", "/a?b=%zz"),
    fc.string({ maxLength: 30 }),
  ),
);
const version = mostly(fc.constant("HTTP/1.1"), fc.constantFrom("HTTP/1.0", "HTTP/2.0", "HTTP/9.9", "HTTP/1.1 x", ""));
const eol = mostly(fc.constant("\r\n"), fc.constantFrom("\n", "\r", ""));
const headerField = mostly(
  fc.oneof(
    fc.constantFrom(
      "connect-protocol-version: 1",
      "connect-timeout-ms: 50",
      "grpc-timeout: 1m",
      "authorization: Bearer x",
      "cookie: portico_session=x",
      "connection: keep-alive",
      "origin: https://evil.example",
      "access-control-request-method: POST",
      "x-forwarded-for: 1.2.3.4, 5.6.7.8",
      "accept-encoding: gzip",
      "content-encoding: gzip",
      "connect-content-encoding: gzip",
      "grpc-encoding: gzip",
    ),
    fc.tuple(token, fc.stringMatching(/^[ -~]{0,20}$/)).map(([name, value]) => `${name}: ${value}`),
  ),
  fc.oneof(
    fc.constantFrom(
      "transfer-encoding: chunked, gzip",
      "transfer-encoding: xchunked",
      "content-length: -1",
      "content-length: 99999999999999999999",
      "content-length: 1, 2",
      "connection: upgrade",
      "upgrade: h2c",
      "expect: 100-continue",
      " folded: continuation",
      "no-colon",
      ": empty-name",
      "x-nul: a\u0000b",
      "host: a",
    ),
    fc.tuple(token, fc.string({ maxLength: 20 })).map(([name, value]) => `${name}: ${value}`),
  ),
);
const bodyData = fc.oneof(
  fc.constantFrom("", "{}", '{"name":"x"}', "\u0000\u0000\u0000\u0000\u0000", "AAAAAAA="),
  fc.string({ maxLength: 40 }),
  // An enveloped message (gRPC-Web, Connect streaming) with any declared length.
  fc.tuple(fc.nat(255), mostly(fc.nat(40), fc.nat(0xffffffff)), fc.string({ maxLength: 10 })).map(([flags, length, data]) => {
    const prefix = Buffer.alloc(5);
    prefix[0] = flags;
    prefix.writeUInt32BE(length, 1);
    return prefix.toString("latin1") + data;
  }),
);
/** The body and the headers that frame it: a true or lying content-length, or chunks, well-formed or not. */
const framedBody = fc
  .record({
    data: bodyData,
    framing: mostly(fc.constantFrom("length", "chunked", "none"), fc.constantFrom("short", "long", "bad-chunk", "both")),
    split: fc.nat(3),
  })
  .map(({ data, framing, split }) => {
    const bytes = Buffer.byteLength(data, "latin1");
    const pieces = [data.slice(0, split), data.slice(split)].filter((piece) => piece.length > 0);
    const chunked = pieces.map((piece) => `${piece.length.toString(16)}\r\n${piece}\r\n`).join("");
    switch (framing) {
      case "length":
        return { headers: [`content-length: ${bytes}`], body: data };
      case "chunked":
        return { headers: ["transfer-encoding: chunked"], body: `${chunked}0\r\n\r\n` };
      case "short":
        return { headers: [`content-length: ${bytes + 1 + split}`], body: data };
      case "long":
        return { headers: [`content-length: ${Math.max(0, bytes - 1 - split)}`], body: data };
      case "bad-chunk":
        return { headers: ["transfer-encoding: chunked"], body: `zz\r\n${data}\r\n0\r\n\r\n` };
      case "both":
        return { headers: ["transfer-encoding: chunked", `content-length: ${bytes}`], body: `${chunked}0\r\n\r\n` };
      default:
        return { headers: [], body: "" };
    }
  });
const almostHttp = fc
  .record({
    method,
    target,
    version,
    eol,
    host: mostly(fc.constant(true), fc.constant(false)),
    contentType: mostly(
      fc.constantFrom("application/json", "application/proto", "application/connect+json", "application/grpc-web+proto"),
      fc.constantFrom("", "application/grpc", "application/grpc-web-text", "text/plain", "application/JSON; charset=utf-8"),
    ),
    headers: fc.array(headerField, { maxLength: 5 }),
    framed: framedBody,
    repeat: mostly(fc.constant(0), fc.nat(2)),
  })
  .map(({ method, target, version, eol, host, contentType, headers, framed, repeat }) => {
    const fields = [
      ...(host ? ["host: gateway"] : []),
      ...(contentType === "" ? [] : [`content-type: ${contentType}`]),
      ...headers,
      ...framed.headers,
    ];
    const request = `${method} ${target} ${version}${eol}${fields.map((field) => field + eol).join("")}${eol}${framed.body}`;
    return Buffer.from(request.repeat(repeat + 1), "latin1");
  });

describe("HTTP/1.1 on the public port", () => {
  itHolds(
    "arbitrary bytes are answered 4xx or the connection closed, and the gateway keeps serving",
    fc.asyncProperty(
      fc.oneof(
        fc.uint8Array({ minLength: 1, maxLength: 300 }).map((b) => Buffer.from(b)),
        // Bytes that start like the HTTP/2 preface and then go astray.
        fc
          .tuple(fc.nat(23), fc.uint8Array({ minLength: 1, maxLength: 40 }))
          .map(([n, rest]) => Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".slice(0, n), "latin1"), rest])),
      ),
      async (bytes) => {
        escaped.length = 0;
        const { received, closed } = await exchange(bytes);
        expect(escaped).toEqual([]);
        expect(closed, "the connection stayed open after the client ended it").toBe(true);
        // Nothing received ends the same way as a 4xx (an HTTP/2 preface gone astray).
        for (const status of statuses(received)) expect(status).toBeGreaterThanOrEqual(400);
        for (const status of statuses(received)) expect(status).toBeLessThan(500);
        await expectStillServing();
      },
    ),
  );

  itHolds(
    "almost-HTTP/1.1 requests get well-formed answers, never an internal error, and the gateway keeps serving",
    fc.asyncProperty(almostHttp, async (bytes) => {
      escaped.length = 0;
      const { received, closed } = await exchange(bytes);
      expect(escaped).toEqual([]);
      expect(closed, "the connection stayed open after the client ended it").toBe(true);
      for (const status of statuses(received)) {
        expect(status).toBeGreaterThanOrEqual(100);
        expect(status).toBeLessThan(600);
        expect(status, "internal error").not.toBe(500);
      }
      await expectStillServing();
    }),
  );
});

describe("HTTP/2 (h2c) on the public port", () => {
  itHolds(
    "any sequence of well-formed hostile frames ends in GOAWAY or leaves a working connection, and the gateway keeps serving",
    fc.asyncProperty(fc.array(hostileFrame, { minLength: 1, maxLength: 20 }), async (frames) => {
      escaped.length = 0;
      const socket = net.connect({ port: gateway.port, host: "127.0.0.1", noDelay: true });
      socket.on("error", () => {});
      await new Promise<void>((resolve) => socket.once("connect", resolve));
      const peer = rawPeer(socket);
      try {
        const sent = Buffer.concat([CLIENT_PREFACE, settingsFrame([]), ...frames]);
        socket.write(sent);
        // A GET of an unknown method is the gateway's own 501 (unimplemented) answer.
        await expectGoawayOrWorking(peer, frames, sent, escaped, {
          path: "/no.such.Service/Method",
          expectStatus: (status) => expect(status).toBe("501"),
        });
      } finally {
        socket.destroy();
      }
      await expectStillServing();
    }),
  );
});
