// Property-based tests of the HTTP/2 engine on real sockets, server and client roles (`npm run fuzz` runs them longer).
import * as net from "node:net";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { CLIENT_PREFACE, FrameFlag, FrameType, frame, settingsFrame } from "../../src/h2/frame.js";
import { connectH2, type H2ServerOptions, type H2Session, type H2Stream, serveH2 } from "../../src/h2/index.js";
import { itHolds, watchEscapes } from "../test-fuzz.js";
import {
  anyFlags,
  block,
  bytes,
  expectGoawayOrWorking,
  hostileFrame,
  mostly,
  type RawPeer,
  rawPeer,
  SETTLE_MS,
  sleep,
  until,
} from "./test-hostile-frames.js";

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

interface Peer extends RawPeer {
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
  await until(() => served.has(localPort), SETTLE_MS);
  const peer: Peer = Object.assign(rawPeer(socket), { served: served.get(localPort) as Served });
  try {
    await use(peer);
  } finally {
    socket.destroy();
    await until(() => !served.has(localPort), SETTLE_MS);
  }
}

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
          await expectGoawayOrWorking(peer, frames, all, escaped, {
            path: "/",
            expectStatus: (status) => expect(status).toBe("200"),
          });
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
        const closed = await until(() => peer.closed || escaped.length > 0, SETTLE_MS);
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
        const settled = await until(() => (sessionClosed && callsClosed === 2) || escaped.length > 0, SETTLE_MS);
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
