// Property-based tests of the HTTP/2 engine's server side on a real socket (`npm run fuzz` runs them longer).
import * as net from "node:net";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { itHolds, watchEscapes } from "../test-fuzz.js";
import { CLIENT_PREFACE, FrameFlag, FrameType, frame, H2Error, settingsFrame } from "./frame.js";
import { createHpackDecoder, createHpackEncoder } from "./hpack.js";
import { connectH2, type H2ServerOptions, type H2Session, type H2Stream, serveH2 } from "./session.js";
import { type ReceivedFrame, readFrames } from "./test-frames.js";

// --- the server: the engine with the gateway's settings and an echo handler ---

const MAX_STREAMS = 100;

/** Answers 200 at once and echoes the request body back, reading no faster than the client reads. */
const echo: H2ServerOptions["onStream"] = (stream: H2Stream) => {
  stream.respond({ ":status": 200, "content-type": "application/octet-stream" });
  stream.on("data", (chunk: Buffer) => {
    if (stream.write(chunk)) return;
    stream.pause();
    stream.once("drain", () => stream.resume());
  });
  stream.on("end", () => stream.end());
  stream.on("error", () => {});
};

interface Served {
  socket: net.Socket;
  session: H2Session;
}

let server: net.Server;
let port: number;
/** Server side of each connection, by the client's local port. */
const served = new Map<number, Served>();
/** Errors that escaped to the process while a property ran. */
const escapes = watchEscapes();
const escaped = escapes.errors;

beforeAll(async () => {
  server = net.createServer({ noDelay: true }, (socket) => {
    const session = serveH2(socket, {
      settings: { maxConcurrentStreams: MAX_STREAMS, initialWindowSize: 1024 * 1024, maxHeaderListSize: 64 * 1024 },
      connectionWindowSize: 8 * 1024 * 1024,
      onStream: echo,
    });
    session.on("error", () => {});
    served.set(socket.remotePort as number, { socket, session });
    socket.on("close", () => served.delete(socket.remotePort as number));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as net.AddressInfo).port;
});

afterAll(() => {
  escapes.stop();
  for (const { socket } of served.values()) socket.destroy();
  server.close();
});

// --- the client: a raw socket that sends what it is given and parses what comes back ---

interface Peer {
  socket: net.Socket;
  frames: ReceivedFrame[];
  closed: boolean;
  /** The server side of this connection. */
  served: Served;
}

/**
 * Runs `use` on a new connection; then closes it and waits until the server side is closed too, so
 * that nothing of this run reaches the next one.
 */
async function withPeer(use: (peer: Peer) => Promise<void>): Promise<void> {
  const socket = net.connect({ port, host: "127.0.0.1", noDelay: true });
  socket.on("error", () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const localPort = socket.localPort as number;
  await until(() => served.has(localPort), 2000);
  const peer: Peer = { socket, frames: [], closed: false, served: served.get(localPort) as Served };
  let inbuf: Buffer = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => {
    const { frames, rest } = readFrames(Buffer.concat([inbuf, chunk]));
    peer.frames.push(...frames);
    inbuf = rest;
  });
  socket.on("close", () => {
    peer.closed = true;
  });
  try {
    await use(peer);
  } finally {
    socket.destroy();
    await until(() => !served.has(localPort), 2000);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
async function until(condition: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await sleep(2);
  }
  return true;
}

const PROBE = Buffer.from("fuzzprob", "latin1");
const sawGoaway = (peer: Peer) => peer.frames.some((f) => f.type === FrameType.goaway);
const probeAnswered = (peer: Peer) =>
  peer.frames.some((f) => f.type === FrameType.ping && (f.flags & FrameFlag.ack) !== 0 && f.payload.equals(PROBE));

/**
 * After the hostile frames: the connection either ended with a GOAWAY (the server's or the client's
 * own) or still works (a PING is answered, and a new request too); and nothing escaped the engine.
 */
async function expectGoawayOrWorking(peer: Peer, frames: Buffer[], sent: Buffer): Promise<void> {
  const clientGoaway = frames.some((f) => f[3] === FrameType.goaway);
  if (!peer.closed) peer.socket.write(frame(FrameType.ping, 0, 0, PROBE));
  const settled = await until(() => peer.closed || probeAnswered(peer) || escaped.length > 0, 1500);
  const after = `after ${sent.toString("hex")}`;
  expect(escaped, after).toEqual([]);
  expect(settled, `the connection neither answered a PING nor closed within 1.5 s ${after}`).toBe(true);
  if (!probeAnswered(peer)) expect(sawGoaway(peer) || clientGoaway, `closed without GOAWAY ${after}`).toBe(true);
  else if (!sawGoaway(peer) && !clientGoaway) await expectRequestServed(peer, frames, after);
  // Push is off: the server never opens streams of its own.
  for (const f of peer.frames) expect(f.id % 2 === 1 || f.id === 0, `frame type ${f.type} on stream ${f.id}`).toBe(true);
}

/** A GET on a new stream (above every id the client used) is answered 200, or refused when too many are open. */
async function expectRequestServed(peer: Peer, frames: Buffer[], after: string): Promise<void> {
  const highest = Math.max(0, ...frames.map((f) => f.readUInt32BE(5) & 0x7fffffff));
  const id = highest + (highest % 2 === 0 ? 1 : 2);
  if (id > 0x7fffffff) return;
  const request = block([
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "h"],
  ]);
  peer.socket.write(frame(FrameType.headers, FrameFlag.endHeaders | FrameFlag.endStream, id, request));
  const answer = () => peer.frames.find((f) => f.id === id && (f.type === FrameType.headers || f.type === FrameType.rstStream));
  await until(() => answer() !== undefined || peer.closed || escaped.length > 0, 1500);
  expect(escaped, after).toEqual([]);
  const answered = answer();
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
  expect(status, after).toBe("200");
}

// --- hostile but well-formed frames ---

const streamId = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(1, 3, 5, 7) },
  { weight: 1, arbitrary: fc.constantFrom(0, 2, 4, 0x7fffffff, 0x80000001) },
  { weight: 1, arbitrary: fc.nat(0x7fffffff) },
);
/** Mostly `usual`, now and then `odd`: most sequences get past their first frames. */
const mostly = <T>(usual: fc.Arbitrary<T>, odd: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 9, arbitrary: usual }, { weight: 1, arbitrary: odd });
const rarely = <T>(arbitrary: fc.Arbitrary<T>) => mostly(fc.constant(null), arbitrary);
const connectionId = mostly(fc.constant(0), streamId);
const anyFlags = mostly(fc.constantFrom(0, FrameFlag.endStream), fc.nat(255));
const word = fc.oneof(fc.constantFrom(0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 65_535, 16_384, 16_383), fc.nat(0xffffffff));
const bytes = (maxLength: number, minLength = 0) => fc.uint8Array({ minLength, maxLength }).map((b) => Buffer.from(b));
const words = (...values: number[]) => {
  const out = Buffer.alloc(4 * values.length);
  values.forEach((value, i) => {
    out.writeUInt32BE(value >>> 0, 4 * i);
  });
  return out;
};

/** A request's fields: valid ones, and the malformed kinds RFC 9113 §8.2 names. */
const requestFields = fc
  .record({
    method: mostly(fc.constantFrom("GET", "POST"), fc.constantFrom("CONNECT", "get", "")),
    path: mostly(fc.constantFrom("/", "/a.B/C", "/x?y=z"), fc.constantFrom("", "*")),
    scheme: mostly<string | undefined>(fc.constant("http"), fc.constant(undefined)),
    authority: fc.option(fc.constantFrom("h", "example.com:80")),
    extra: fc.array(
      fc.tuple(
        mostly(
          fc.stringMatching(/^x-[a-z-]{1,10}$/),
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
  .map(({ method, path, scheme, authority, extra, pseudoLast }) => {
    const pseudo: Array<[string, string]> = [
      [":method", method],
      [":path", path],
    ];
    if (scheme !== undefined) pseudo.push([":scheme", scheme]);
    if (authority !== null) pseudo.push([":authority", authority]);
    return pseudoLast ? [...extra, ...pseudo] : [...pseudo, ...extra];
  });

/**
 * A header block from a fresh encoder: it refers only to the static table and to entries it adds
 * itself, which are the newest in the server's table too, so it decodes after any earlier blocks.
 */
const block = (fields: Array<[string, string]>) => createHpackEncoder().encode(fields);

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

const hostileFrame: fc.Arbitrary<Buffer> = fc.oneof(
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

const SETTINGS_EMPTY = settingsFrame([]);
/** How much a flooding client sends. */
const FLOOD_BYTES = 1024 * 1024;
/** Memory the process may hold for one flooding connection beyond the bytes queued on its two sockets. */
const HELD_BUDGET = 48 * 1024 * 1024;

describe("serveH2 on hostile input, over a real socket", () => {
  itHolds(
    "any sequence of well-formed hostile frames after the preface ends in GOAWAY or leaves a working connection",
    fc.asyncProperty(
      fc.boolean(),
      fc.array(hostileFrame, { minLength: 1, maxLength: 25 }),
      fc.nat(3),
      async (clientSettingsFirst, frames, writes) => {
        escaped.length = 0;
        await withPeer(async (peer) => {
          const all = Buffer.concat([CLIENT_PREFACE, ...(clientSettingsFirst ? [SETTINGS_EMPTY] : []), ...frames]);
          // In one write or a few.
          const step = Math.ceil(all.length / (writes + 1));
          for (let offset = 0; offset < all.length; offset += step) {
            peer.socket.write(all.subarray(offset, offset + step));
            if (writes > 0) await sleep(1);
          }
          await expectGoawayOrWorking(peer, frames, all);
        });
      },
    ),
  );

  itHolds(
    "arbitrary bytes after the preface never escape the engine, and the connection closes once the client does",
    fc.asyncProperty(fc.boolean(), bytes(400), async (clientSettingsFirst, noise) => {
      escaped.length = 0;
      await withPeer(async (peer) => {
        peer.socket.write(Buffer.concat([CLIENT_PREFACE, ...(clientSettingsFirst ? [SETTINGS_EMPTY] : []), noise]));
        await sleep(1);
        peer.socket.end();
        const closed = await until(() => peer.closed || escaped.length > 0, 1500);
        expect(escaped, `after ${noise.toString("hex")}`).toEqual([]);
        expect(closed, "the server kept the connection after the client ended it").toBe(true);
      });
    }),
  );

  itHolds(
    "a client that sends a hostile sequence over and over and never reads holds the server to a budget",
    fc.asyncProperty(fc.array(hostileFrame, { minLength: 1, maxLength: 10 }), async (frames) => {
      escaped.length = 0;
      await withPeer(async (peer) => {
        peer.socket.pause();
        const unit = Buffer.concat(frames);
        const sent = Buffer.concat([
          CLIENT_PREFACE,
          SETTINGS_EMPTY,
          ...new Array<Buffer>(Math.ceil(FLOOD_BYTES / unit.length)).fill(unit),
        ]);
        const server = peer.served.socket;
        const before = process.memoryUsage().arrayBuffers;
        peer.socket.write(sent);
        // Until the server has read everything, stopped reading, or closed.
        let read = -1;
        while (!server.destroyed && server.bytesRead !== read) {
          read = server.bytesRead;
          await sleep(10);
          expect(peer.served.session.streamCount).toBeLessThanOrEqual(MAX_STREAMS);
          const queued = server.writableLength + peer.socket.writableLength;
          expect(process.memoryUsage().arrayBuffers - before - queued).toBeLessThan(HELD_BUDGET);
          // Narrowed: replies are not capped yet (issue 11, item 2), but never outgrow what the client sent.
          expect(server.writableLength).toBeLessThanOrEqual(server.bytesRead + 65_536);
        }
        expect(escaped, `after ${unit.toString("hex")} repeated`).toEqual([]);
      });
    }),
  );
});

// --- client role: the engine calls an upstream that answers with hostile frames ---

/** A response header block on one of the client's streams: valid, or with the malformed kinds RFC 9113 §8.3 names. */
const responseHeadersFrame = fc
  .record({
    id: fc.constantFrom(1, 3),
    status: mostly(fc.constantFrom("200", "200", "503", "100"), fc.constantFrom("", "abc", "99", "2000")),
    extra: fc.array(
      mostly(
        fc.constantFrom<[string, string]>(
          ["content-type", "application/grpc"],
          ["grpc-status", "0"],
          ["grpc-status", "14"],
          ["grpc-message", "x%20y"],
        ),
        fc.constantFrom<[string, string]>([":path", "/"], ["Upper", "x"], ["connection", "close"], [":status", "204"]),
      ),
      { maxLength: 3 },
    ),
    flags: mostly(fc.constantFrom(FrameFlag.endHeaders, FrameFlag.endHeaders | FrameFlag.endStream), anyFlags),
  })
  .map(({ id, status, extra, flags }) => frame(FrameType.headers, flags, id, block([[":status", status], ...extra])));
const upstreamFrame = fc.oneof({ weight: 2, arbitrary: responseHeadersFrame }, { weight: 5, arbitrary: hostileFrame });

describe("connectH2 against a hostile upstream", () => {
  itHolds(
    "whatever frames the upstream answers with, nothing escapes the engine and every call ends once the upstream is gone",
    fc.asyncProperty(fc.boolean(), fc.array(upstreamFrame, { minLength: 1, maxLength: 15 }), async (settingsFirst, frames) => {
      escaped.length = 0;
      const sent = Buffer.concat([...(settingsFirst ? [SETTINGS_EMPTY] : []), ...frames]);
      const upstream = net.createServer((socket) => {
        socket.on("error", () => {});
        // After the client's preface: the hostile answer, then the upstream goes away.
        socket.once("data", () => socket.end(sent));
      });
      await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
      const session = connectH2({ url: `http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}` });
      session.on("error", () => {});
      let sessionClosed = false;
      session.on("close", () => {
        sessionClosed = true;
      });
      let callsClosed = 0;
      for (const path of ["/a.B/C", "/a.B/D"]) {
        const stream = session.request({ ":method": "POST", ":path": path }, { endStream: true });
        stream.on("error", () => {});
        stream.on("data", () => {});
        stream.on("close", () => callsClosed++);
      }
      try {
        const settled = await until(() => (sessionClosed && callsClosed === 2) || escaped.length > 0, 1500);
        const after = `after ${sent.toString("hex")}`;
        expect(escaped, after).toEqual([]);
        expect(settled, `calls closed: ${callsClosed} of 2, session closed: ${sessionClosed} ${after}`).toBe(true);
      } finally {
        session.destroy();
        upstream.close();
      }
    }),
  );
});
