import { createHash } from "node:crypto";
import * as http2 from "node:http2";
import * as net from "node:net";
import { expect } from "vitest";
import { CLIENT_PREFACE, FrameFlag, FrameType, frame, settingsFrame } from "../../src/h2/frame.js";
import type { HpackEncoder } from "../../src/h2/hpack.js";
import { type H2ServerOptions, type H2Session, type H2Stream, serveH2 } from "../../src/h2/index.js";
import { type ReceivedFrame, readFrames } from "./test-frames.js";

// Test helper (not a test): engine servers on free ports, node:http2 clients and raw-socket peers.

export const MiB = 1024 * 1024;

// Everything a test opens is closed after it, pass or fail.
export const cleanups: Array<() => void> = [];
/** For afterEach: closes what the test opened. */
export function closeAll(): void {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
}

export const sha256 = (data: Buffer): string => createHash("sha256").update(data).digest("hex");
export function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}
export async function until(condition: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves with the event's arguments, rejects after `ms`. */
export function waitFor<T extends unknown[] = unknown[]>(
  emitter: { once(event: string, listener: (...args: unknown[]) => void): unknown },
  event: string,
  ms = 3000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${event}' within ${ms} ms`)), ms);
    emitter.once(event, (...args: unknown[]) => {
      clearTimeout(timer);
      resolve(args as T);
    });
  });
}

// --- server role: the engine serves, node:http2 (or a raw socket) calls ---

export interface EngineServer {
  port: number;
  sessions: H2Session[];
}

export async function engineServer(
  options: Partial<H2ServerOptions> = {},
  onStream: H2ServerOptions["onStream"] = echo,
): Promise<EngineServer> {
  const sessions: H2Session[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    const session = serveH2(socket, { ...options, onStream });
    session.on("error", () => {});
    sessions.push(session);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return { port: (server.address() as net.AddressInfo).port, sessions };
}

/** Answers 200 with the request body; trailers when the request has `x-trailers`. */
export function echo(stream: H2Stream, headers: http2.IncomingHttpHeaders): void {
  const trailers = headers["x-trailers"] !== undefined;
  if (trailers) {
    const send = () => stream.sendTrailers({ "x-echo": "done", "x-path": headers[":path"] });
    stream.on("wantTrailers", () => (headers["x-trailers"] === "later" ? setTimeout(send, 20) : send()));
  }
  stream.respond({ ":status": 200, "x-path": headers[":path"] }, { waitForTrailers: trailers });
  stream.on("data", (chunk: Buffer) => {
    if (!stream.write(chunk)) {
      stream.pause();
      stream.once("drain", () => stream.resume());
    }
  });
  stream.on("end", () => stream.end());
}

export function nodeClient(port: number, options: http2.ClientSessionOptions = {}): http2.ClientHttp2Session {
  const client = http2.connect(`http://127.0.0.1:${port}`, options);
  client.on("error", () => {});
  cleanups.push(() => client.destroy());
  return client;
}

export interface Reply {
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  trailers: http2.IncomingHttpHeaders | undefined;
}

/** One request from a node client; rejects on a stream error or an early close (with the stream's rstCode). */
export function nodeCall(
  client: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body?: Buffer | string,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = client.request(
      { ":method": body === undefined ? "GET" : "POST", ...headers },
      {
        endStream: body === undefined,
      },
    );
    const chunks: Buffer[] = [];
    let response: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | undefined;
    req.on("response", (h) => {
      response = h;
    });
    req.on("trailers", (t) => {
      trailers = t;
    });
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve({ headers: response, body: Buffer.concat(chunks), trailers }));
    req.on("error", (error) => reject(Object.assign(error, { rstCode: req.rstCode })));
    req.on("close", () => reject(Object.assign(new Error(`closed early (rstCode ${req.rstCode})`), { rstCode: req.rstCode })));
    if (body !== undefined) req.end(body);
  });
}

// --- raw sockets: a few hand-made frames, and the frames that come back ---

export type RawFrame = ReceivedFrame;

export interface RawPeer {
  socket: net.Socket;
  frames: RawFrame[];
  closed: Promise<void>;
}

/** A raw TCP client that opens with `opening` (default: the preface and an empty SETTINGS) and parses what comes back. */
export async function rawPeer(
  port: number,
  opening: Buffer = Buffer.concat([CLIENT_PREFACE, settingsFrame([])]),
): Promise<RawPeer> {
  const socket = net.connect({ port, host: "127.0.0.1" });
  cleanups.push(() => socket.destroy());
  const frames: RawFrame[] = [];
  let inbuf: Buffer = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => {
    const { frames: complete, rest } = readFrames(Buffer.concat([inbuf, chunk]));
    frames.push(...complete);
    inbuf = rest;
  });
  socket.on("error", () => {});
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  await waitFor(socket, "connect");
  if (opening.length > 0) socket.write(opening);
  return { socket, frames, closed };
}

/** 32-bit big-endian words, as frame payloads carry them (RST_STREAM, GOAWAY, WINDOW_UPDATE). */
export const words = (...values: number[]): Buffer => {
  const out = Buffer.alloc(4 * values.length);
  values.forEach((value, i) => {
    out.writeUInt32BE(value >>> 0, 4 * i);
  });
  return out;
};
export const rst = (id: number, code: number): Buffer => frame(FrameType.rstStream, 0, id, words(code));
export const ping = (n: number): Buffer => frame(FrameType.ping, 0, 0, Buffer.alloc(8, n & 0xff));

/** The header fields of a well-formed request to `path` (authority `x`), then `extra`. */
export function requestFields(method: string, path: string, extra: Array<[string, string]> = []): Array<[string, string]> {
  return [[":method", method], [":scheme", "http"], [":authority", "x"], [":path", path], ...extra];
}

/** A request's HEADERS frame in one piece (END_HEADERS; END_STREAM when `end`). */
export function requestFrame(
  encoder: HpackEncoder,
  id: number,
  path: string,
  end: boolean,
  extra: Array<[string, string]> = [],
  method = "POST",
): Buffer {
  const flags = FrameFlag.endHeaders | (end ? FrameFlag.endStream : 0);
  return frame(FrameType.headers, flags, id, encoder.encode(requestFields(method, path, extra)));
}

/** The frames of `type` the peer received (on `id` when given). */
export const received = (peer: RawPeer, type: number, id?: number): RawFrame[] =>
  peer.frames.filter((f) => f.type === type && (id === undefined || f.id === id));

/** A normal client on another connection is still served (by `echo`). */
export async function othersServed(port: number): Promise<void> {
  const reply = await closesWithin(nodeCall(nodeClient(port), { ":path": "/other" }, "fine"), 3000);
  expect(reply.body.toString()).toBe("fine");
}

export const goawayCode = (peer: RawPeer): number | undefined => {
  const goaway = peer.frames.find((f) => f.type === FrameType.goaway);
  return goaway?.payload.readUInt32BE(4);
};

export async function closesWithin<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
