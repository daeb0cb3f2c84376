// Property-based tests of the caller side of translation: what an upstream's messages, status and
// metadata become in each caller protocol, over the gateway's HTTP/2 engine or HTTP/1.1, read by
// node's clients and connect-es (`npm run fuzz` runs them longer).
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import type { ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus, endStreamFromJson, errorFromJson } from "@connectrpc/connect/protocol-connect";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import { trailerParse } from "@connectrpc/connect/protocol-grpc-web";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { createCallerWriter } from "../src/caller-writer.js";
import type { Downstream } from "../src/downstream.js";
import { sendError } from "../src/error-response.js";
import { serveH2 } from "../src/h2/index.js";
import { createHttp1Downstream } from "../src/http1-downstream.js";
import { type CallProtocol, protocols } from "../src/rpc-protocol.js";
import { itHolds } from "./test-fuzz.js";
import { connectErrorArbitrary, expectSameError, metadataArbitrary } from "./test-rpc-arbitraries.js";

/** What the server side does for one request: write an upstream's answer, or answer an error itself. */
interface Scenario {
  caller: CallProtocol;
  /** The gateway answers the call itself (sendError) instead of relaying an upstream's answer. */
  own: boolean;
  messages: Buffer[];
  error: ConnectError | undefined;
  metadata: Record<string, string[]>;
  trailers: Record<string, string[]>;
}

const scenarios = new Map<string, Scenario>();
let h2Server: net.Server;
let h1Server: http.Server;
let client: http2.ClientHttp2Session;
let h1Port: number;

/** Plays the scenario of the request's path on the caller's side of the call (`down`). */
function play(down: Downstream, path: string): void {
  const scenario = scenarios.get(path) as Scenario;
  const { caller, messages, error, metadata, trailers } = scenario;
  if (scenario.own) {
    sendError(down, caller, error as ConnectError);
    return;
  }
  const writer = createCallerWriter(down, caller, { failure: undefined });
  writer.metadata(metadata);
  for (const message of messages) writer.message(message);
  writer.end(error, trailers);
}

beforeAll(async () => {
  // The caller's side over the gateway's HTTP/2 engine, and over HTTP/1.1 (chunked, with trailers).
  h2Server = net.createServer((socket) => {
    const session = serveH2(socket, { onStream: (stream, headers) => play(stream, String(headers[":path"])) });
    session.on("error", () => {});
  });
  h1Server = http.createServer((req, res) => play(createHttp1Downstream(req, res), String(req.url)));
  await new Promise<void>((resolve) => h2Server.listen(0, "127.0.0.1", resolve));
  await new Promise<void>((resolve) => h1Server.listen(0, "127.0.0.1", resolve));
  h1Port = (h1Server.address() as net.AddressInfo).port;
  client = http2.connect(`http://127.0.0.1:${(h2Server.address() as net.AddressInfo).port}`);
  client.on("error", () => {});
});

afterAll(() => {
  client.destroy();
  h2Server.close();
  h1Server.closeAllConnections();
  h1Server.close();
});

interface Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
}

function call(path: string, over: "h2" | "h1"): Promise<Answer> {
  return over === "h2" ? callH2(path) : callH1(path);
}

function callH2(path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const stream = client.request({ ":method": "POST", ":path": path }, { endStream: true });
    const chunks: Buffer[] = [];
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    stream.on("response", (h) => {
      headers = h;
    });
    stream.on("trailers", (t) => {
      trailers = t;
    });
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => resolve({ status: Number(headers[":status"]), headers, trailers, body: Buffer.concat(chunks) }));
    stream.on("error", reject);
  });
}

function callH1(path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: "127.0.0.1", port: h1Port, method: "POST", path, agent: h1Agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, trailers: res.trailers, body: Buffer.concat(chunks) }),
      );
      res.on("error", reject);
    });
    request.on("error", reject);
    request.end();
  });
}
const h1Agent = new http.Agent({ keepAlive: true });

/** Envelopes, parsed independently of the gateway's reader. */
function envelopes(body: Buffer): Array<{ flags: number; data: Buffer }> {
  const out: Array<{ flags: number; data: Buffer }> = [];
  let offset = 0;
  while (offset < body.length) {
    expect(body.length - offset).toBeGreaterThanOrEqual(5);
    const end = offset + 5 + body.readUInt32BE(offset + 1);
    expect(end).toBeLessThanOrEqual(body.length);
    out.push({ flags: body[offset] as number, data: body.subarray(offset + 5, end) });
    offset = end;
  }
  return out;
}

const asHeaders = (record: http2.IncomingHttpHeaders): Headers => {
  const headers = new Headers();
  for (const [name, value] of Object.entries(record)) {
    if (value === undefined || name.startsWith(":")) continue;
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, String(v));
  }
  return headers;
};

/** What the caller reads from the answer, as its own protocol's client library would. */
function readAnswer(
  caller: CallProtocol,
  answer: Answer,
): { messages: Buffer[]; error: ConnectError | undefined; trailers: Headers } {
  if (caller.protocol === "connect" && !caller.enveloped) {
    if (answer.status !== 200) {
      const error = errorFromJson(
        JSON.parse(answer.body.toString("utf8")),
        undefined,
        new Error("no error JSON") as ConnectError,
      );
      expect(answer.status).toBe(codeToHttpStatus(error.code));
      return { messages: [], error, trailers: trailerHeaders(answer.headers) };
    }
    return { messages: [answer.body], error: undefined, trailers: trailerHeaders(answer.headers) };
  }
  expect(answer.status).toBe(200);
  expect(answer.headers["content-type"]).toBe(caller.contentType);
  if (caller.protocol === "grpc") {
    // Trailers-only: the status is in the one header block.
    const trailersOnly = answer.body.length === 0 && answer.headers["grpc-status"] !== undefined;
    const trailers = asHeaders(trailersOnly ? answer.headers : answer.trailers);
    return { messages: dataOf(envelopes(answer.body), 0), error: findTrailerError(trailers), trailers };
  }
  const body = caller.text ? Buffer.from(answer.body.toString("latin1"), "base64") : answer.body;
  const all = envelopes(body);
  const last = all.at(-1);
  if (caller.protocol === "grpc-web") {
    expect(last?.flags).toBe(0x80);
    const trailers = trailerParse((last as { data: Buffer }).data);
    return { messages: dataOf(all.slice(0, -1), 0), error: findTrailerError(trailers), trailers };
  }
  expect(last?.flags).toBe(0x02);
  const end = endStreamFromJson((last as { data: Buffer }).data);
  return { messages: dataOf(all.slice(0, -1), 0), error: end.error, trailers: end.metadata };
}

/** Connect unary trailers travel as `trailer-` prefixed headers. */
function trailerHeaders(headers: http2.IncomingHttpHeaders): Headers {
  const out = new Headers();
  asHeaders(headers).forEach((value, name) => {
    if (name.startsWith("trailer-")) out.set(name.slice(8), value);
  });
  return out;
}

function dataOf(list: Array<{ flags: number; data: Buffer }>, flags: number): Buffer[] {
  for (const envelope of list) expect(envelope.flags).toBe(flags);
  return list.map((envelope) => envelope.data);
}

const callerProtocol = fc.constantFrom(...Object.values(protocols));
/** The caller's connection: HTTP/2 (the gateway's engine) or HTTP/1.1. */
const over = fc.constantFrom<"h2" | "h1">("h2", "h1");
let next = 0;

describe("the caller's side of a translated call", () => {
  itHolds(
    "any messages, status, metadata and trailers from an upstream reach the caller unchanged in its own protocol",
    fc.asyncProperty(
      over,
      callerProtocol,
      fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 4 }),
      fc.option(connectErrorArbitrary),
      metadataArbitrary,
      metadataArbitrary,
      async (via, caller, rawMessages, error, metadata, trailers) => {
        // A Connect unary answer has one message, and none when it fails.
        const unary = caller.protocol === "connect" && !caller.enveloped;
        const messages = (unary ? rawMessages.slice(0, error ? 0 : 1) : rawMessages).map((m) => Buffer.from(m));
        const path = `/call/${next++}`;
        scenarios.set(path, { caller, own: false, messages, error: error ?? undefined, metadata, trailers });
        try {
          const answer = await call(path, via);
          const read = readAnswer(caller, answer);
          expect(read.messages).toEqual(unary && messages.length === 0 && !error ? [Buffer.alloc(0)] : messages);
          expectSameError(read.error, error ?? undefined);
          // In the response headers, before any message; a trailer of the same name replaces nothing.
          for (const [name, values] of Object.entries(metadata)) {
            expect(asHeaders(answer.headers).get(name), `metadata ${name}`).toBe(values.join(", "));
          }
          for (const [name, values] of Object.entries(trailers)) {
            expect(read.trailers.get(name), `trailer ${name}`).toBe(values.join(", "));
          }
        } finally {
          scenarios.delete(path);
        }
      },
    ),
  );

  itHolds(
    "any error the gateway answers itself reaches the caller as that error in its own protocol",
    fc.asyncProperty(over, callerProtocol, connectErrorArbitrary, async (via, caller, error) => {
      const path = `/own/${next++}`;
      scenarios.set(path, { caller, own: true, messages: [], error, metadata: {}, trailers: {} });
      try {
        const read = readAnswer(caller, await call(path, via));
        expect(read.messages).toEqual([]);
        expectSameError(read.error, error);
      } finally {
        scenarios.delete(path);
      }
    }),
  );
});
