// Test helper (not a test): hostile but well-formed HTTP/2 frames for property-based tests, and a
// raw client that checks what a server made of them.
import type * as net from "node:net";
import fc from "fast-check";
import { expect } from "vitest";
import { FrameFlag, FrameType, frame, H2Error, settingsFrame } from "../../src/h2/frame.js";
import { createHpackDecoder, createHpackEncoder } from "../../src/h2/hpack.js";
import { type ReceivedFrame, readFrames } from "./test-frames.js";
import { words } from "./test-peers.js";

/** A raw HTTP/2 client connection and the frames it has received so far. */
export interface RawPeer {
  socket: net.Socket;
  frames: ReceivedFrame[];
  closed: boolean;
}

/** Wraps a connected socket: parses what arrives into `frames`, notes the close. */
export function rawPeer(socket: net.Socket): RawPeer {
  const peer: RawPeer = { socket, frames: [], closed: false };
  let inbuf: Buffer = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => {
    const { frames, rest } = readFrames(Buffer.concat([inbuf, chunk]));
    peer.frames.push(...frames);
    inbuf = rest;
  });
  socket.on("close", () => {
    peer.closed = true;
  });
  return peer;
}

const streamId = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(1, 3, 5, 7) },
  { weight: 1, arbitrary: fc.constantFrom(0, 2, 4, 0x7fffffff, 0x80000001) },
  { weight: 1, arbitrary: fc.nat(0x7fffffff) },
);
/** Mostly `usual`, now and then `odd`: most sequences get past their first frames. */
export const mostly = <T>(usual: fc.Arbitrary<T>, odd: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 9, arbitrary: usual }, { weight: 1, arbitrary: odd });
const rarely = <T>(arbitrary: fc.Arbitrary<T>) => mostly(fc.constant(null), arbitrary);
const connectionId = mostly(fc.constant(0), streamId);
export const anyFlags = mostly(fc.constantFrom(0, FrameFlag.endStream), fc.nat(255));
const word = fc.oneof(fc.constantFrom(0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 65_535, 16_384, 16_383), fc.nat(0xffffffff));
export const bytes = (maxLength: number, minLength = 0) => fc.uint8Array({ minLength, maxLength }).map((b) => Buffer.from(b));

/** A request's fields: valid ones, and the malformed kinds RFC 9113 §8.2 names. */
const requestFields = fc
  .record({
    method: mostly(fc.constantFrom("GET", "POST"), fc.constantFrom("CONNECT", "get", "")),
    // Paths the gateway routes, and others.
    path: mostly(
      fc.constantFrom(
        "/",
        "/a.B/C",
        "/x?y=z",
        "/portico.greeter.v1.GreeterService/Greet",
        "/portico.greeter.v1.GreeterService/StreamGreetings",
        "/portico.auth.v1.AuthService/SignUp",
      ),
      fc.constantFrom("", "*"),
    ),
    scheme: mostly<string | undefined>(fc.constant("http"), fc.constant(undefined)),
    authority: fc.option(fc.constantFrom("h", "example.com:80")),
    contentType: fc.option(
      fc.constantFrom("application/grpc", "application/grpc-web+proto", "application/connect+json", "application/json"),
    ),
    extra: fc.array(
      fc.tuple(
        mostly(
          fc.oneof(
            fc.stringMatching(/^x-[a-z-]{1,10}$/),
            fc.constantFrom("authorization", "grpc-timeout", "connect-timeout-ms", "x-forwarded-for", "origin"),
          ),
          fc.constantFrom("Upper", ":status", ":unknown", "connection", "te", "content-length", "host", ""),
        ),
        mostly(
          fc.stringMatching(/^[!-~]{0,20}$/),
          fc.oneof(fc.constantFrom("trailers", "0", "5", " x", "a\r\nb", "\u0000"), fc.string()),
        ),
      ),
      { maxLength: 4 },
    ),
    pseudoLast: rarely(fc.constant(true)),
  })
  .map(({ method, path, scheme, authority, contentType, extra, pseudoLast }) => {
    const pseudo: Array<[string, string]> = [
      [":method", method],
      [":path", path],
    ];
    if (scheme !== undefined) pseudo.push([":scheme", scheme]);
    if (authority !== null) pseudo.push([":authority", authority]);
    const regular: Array<[string, string]> = contentType === null ? extra : [["content-type", contentType], ...extra];
    return pseudoLast ? [...regular, ...pseudo] : [...pseudo, ...regular];
  });

/**
 * A header block from a fresh encoder: it refers only to the static table and to entries it adds
 * itself, which are the newest in the server's table too, so it decodes after any earlier blocks.
 */
export const block = (fields: Array<[string, string]>) => createHpackEncoder().encode(fields);

const padded = (payload: Buffer, pad: number) => Buffer.concat([Buffer.from([pad]), payload, Buffer.alloc(pad)]);

/** DATA, maybe padded (the pad length may lie), maybe ending the stream. */
const dataFrame = fc
  .record({ id: streamId, flags: anyFlags, data: bytes(3000), pad: rarely(fc.nat(300)) })
  .map(({ id, flags, data, pad }) =>
    frame(FrameType.data, pad === null ? flags : flags | FrameFlag.padded, id, pad === null ? data : padded(data, pad)),
  );

/** HEADERS with a header block (or noise); maybe without END_HEADERS, padded, with priority. */
const headersFrame = fc
  .record({
    id: streamId,
    flags: mostly(fc.constantFrom(FrameFlag.endHeaders, FrameFlag.endHeaders | FrameFlag.endStream), anyFlags),
    fields: mostly(requestFields, fc.constant(null)),
    noise: bytes(60),
    priority: rarely(bytes(5, 5)),
    pad: rarely(fc.nat(40)),
  })
  .map(({ id, flags, fields, noise, priority, pad }) => {
    let payload = fields === null ? noise : block(fields);
    let allFlags = flags & ~(FrameFlag.priority | FrameFlag.padded);
    if (priority !== null) {
      payload = Buffer.concat([priority, payload]);
      allFlags |= FrameFlag.priority;
    }
    if (pad !== null) {
      payload = padded(payload, pad);
      allFlags |= FrameFlag.padded;
    }
    return frame(FrameType.headers, allFlags, id, payload);
  });

const continuationFrame = fc
  .record({
    id: streamId,
    flags: fc.constantFrom(0, FrameFlag.endHeaders),
    fields: mostly(requestFields, fc.constant(null)),
    noise: bytes(40),
  })
  .map(({ id, flags, fields, noise }) => frame(FrameType.continuation, flags, id, fields === null ? noise : block(fields)));

/** SETTINGS: known and unknown ids with edge values; ACK with or without payload; on a stream; a ragged length. */
const settingsFrameArbitrary = fc
  .record({
    settings: fc.array(fc.tuple(mostly(fc.nat(8), fc.nat(0xffff)), mostly(fc.nat(70_000), word)), { maxLength: 6 }),
    ack: rarely(fc.constant(true)),
    id: connectionId,
    extra: rarely(bytes(5, 1)),
  })
  .map(({ settings, ack, id, extra }) => {
    const payload = ack === null ? settingsFrame(settings).subarray(9) : Buffer.alloc(0);
    const withExtra = extra === null ? payload : Buffer.concat([payload, extra]);
    return frame(FrameType.settings, ack === null ? 0 : FrameFlag.ack, id, withExtra);
  });

/** One frame of any type: mostly well-formed, with edge values; now and then malformed. */
export const hostileFrame: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 5, arbitrary: dataFrame },
  { weight: 6, arbitrary: headersFrame },
  { weight: 1, arbitrary: continuationFrame },
  {
    weight: 2,
    arbitrary: fc
      .record({ id: streamId, payload: mostly(bytes(5, 5), bytes(8)) })
      .map(({ id, payload }) => frame(FrameType.priority, 0, id, payload)),
  },
  {
    weight: 3,
    arbitrary: fc
      .record({ id: streamId, code: word, odd: rarely(bytes(7)) })
      .map(({ id, code, odd }) => frame(FrameType.rstStream, 0, id, odd ?? words(code))),
  },
  { weight: 3, arbitrary: settingsFrameArbitrary },
  {
    weight: 1,
    arbitrary: fc
      .record({ id: streamId, payload: bytes(60), flags: anyFlags })
      .map(({ id, payload, flags }) => frame(FrameType.pushPromise, flags, id, payload)),
  },
  {
    weight: 3,
    arbitrary: fc
      .record({ ack: fc.boolean(), id: connectionId, payload: mostly(bytes(8, 8), bytes(12)) })
      .map(({ ack, id, payload }) => frame(FrameType.ping, ack ? FrameFlag.ack : 0, id, payload)),
  },
  {
    weight: 1,
    arbitrary: fc
      .record({ last: word, code: word, debug: bytes(20), id: connectionId, short: rarely(fc.constant(true)) })
      .map(({ last, code, debug, id, short }) =>
        frame(FrameType.goaway, 0, id, short ? words(last).subarray(0, 3) : Buffer.concat([words(last, code), debug])),
      ),
  },
  {
    weight: 3,
    arbitrary: fc
      .record({
        id: mostly(streamId, fc.constant(0)),
        increment: mostly(fc.integer({ min: 1, max: 1 << 20 }), word),
        odd: rarely(bytes(6)),
      })
      .map(({ id, increment, odd }) => frame(FrameType.windowUpdate, 0, id, odd ?? words(increment))),
  },
  // Unknown frame types (to be ignored) and, rarely, a known type with any flags and payload.
  {
    weight: 2,
    arbitrary: fc
      .record({
        type: mostly(fc.integer({ min: 10, max: 255 }), fc.nat(9)),
        flags: fc.nat(255),
        id: streamId,
        payload: bytes(100),
      })
      .map(({ type, flags, id, payload }) => frame(type, flags, id, payload)),
  },
);

/** How long a peer may take to answer before a property calls it hung: generous, for a loaded machine. */
export const SETTLE_MS = 5000;

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
export async function until(condition: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await sleep(2);
  }
  return true;
}

const PROBE = Buffer.from("fuzzprob", "latin1");
const sawGoaway = (peer: RawPeer) => peer.frames.some((f) => f.type === FrameType.goaway);
const probeAnswered = (peer: RawPeer) =>
  peer.frames.some((f) => f.type === FrameType.ping && (f.flags & FrameFlag.ack) !== 0 && f.payload.equals(PROBE));

/**
 * After the hostile `frames` (all of `sent`): the connection either ended with a GOAWAY (the
 * server's or the client's own) or still works (a PING is answered, and a new GET on `path` gets a
 * status that `expectStatus` accepts); and nothing was added to `escaped` (errors that reached the process).
 */
export async function expectGoawayOrWorking(
  peer: RawPeer,
  frames: Buffer[],
  sent: Buffer,
  escaped: unknown[],
  request: { path: string; expectStatus(status: string | undefined): void },
): Promise<void> {
  const clientGoaway = frames.some((f) => f[3] === FrameType.goaway);
  if (!peer.closed) peer.socket.write(frame(FrameType.ping, 0, 0, PROBE));
  const settled = await until(() => peer.closed || probeAnswered(peer) || escaped.length > 0, SETTLE_MS);
  const after = `after ${sent.toString("hex")}`;
  expect(escaped, after).toEqual([]);
  expect(settled, `the connection neither answered a PING nor closed within ${SETTLE_MS} ms ${after}`).toBe(true);
  if (!probeAnswered(peer)) expect(sawGoaway(peer) || clientGoaway, `closed without GOAWAY ${after}`).toBe(true);
  else if (!sawGoaway(peer) && !clientGoaway) await expectRequestServed(peer, frames, after, escaped, request);
  // Push is off: the server never opens streams of its own. An RST_STREAM on an even id only answers
  // a frame the client sent there (a PRIORITY of the wrong length is a stream error, RFC 9113 §6.3).
  for (const f of peer.frames) {
    const opensOwn = f.id !== 0 && f.id % 2 === 0 && f.type !== FrameType.rstStream;
    expect(opensOwn, `frame type ${f.type} on stream ${f.id} ${after}`).toBe(false);
  }
}

/** A GET on a new stream (above every id the client used) is answered, refused when too many are open, or met by GOAWAY. */
async function expectRequestServed(
  peer: RawPeer,
  frames: Buffer[],
  after: string,
  escaped: unknown[],
  request: { path: string; expectStatus(status: string | undefined): void },
): Promise<void> {
  const highest = Math.max(0, ...frames.map((f) => f.readUInt32BE(5) & 0x7fffffff));
  const id = highest + (highest % 2 === 0 ? 1 : 2);
  if (id > 0x7fffffff) return;
  const headers = block([
    [":method", "GET"],
    [":scheme", "http"],
    [":path", request.path],
    [":authority", "h"],
  ]);
  peer.socket.write(frame(FrameType.headers, FrameFlag.endHeaders | FrameFlag.endStream, id, headers));
  const answer = () => peer.frames.find((f) => f.id === id && (f.type === FrameType.headers || f.type === FrameType.rstStream));
  await until(() => answer() !== undefined || peer.closed || escaped.length > 0, SETTLE_MS);
  expect(escaped, after).toEqual([]);
  const answered = answer();
  // A server may still end the connection now (a budget the earlier frames used up), but with a GOAWAY.
  if (answered === undefined && sawGoaway(peer)) return;
  expect(answered, `no answer to a GET on stream ${id} ${after}`).toBeDefined();
  if (answered?.type === FrameType.rstStream) {
    expect(answered.payload.readUInt32BE(0)).toBe(H2Error.refusedStream);
    return;
  }
  // The server's header blocks, decoded in order (they share its encoder's table).
  const decoder = createHpackDecoder();
  let status: string | undefined;
  for (const f of peer.frames) {
    if (f.type !== FrameType.headers) continue;
    const fields = decoder.decode(f.payload, Number.MAX_SAFE_INTEGER);
    if (f.id === id) status = fields.find(([name]) => name === ":status")?.[1];
  }
  request.expectStatus(status);
}
