import { randomBytes } from "node:crypto";
import * as http2 from "node:http2";
import * as net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { CLIENT_PREFACE, FrameFlag, FrameType, frame, H2Error, settingsFrame } from "../../src/h2/frame.js";
import { createHpackEncoder } from "../../src/h2/hpack.js";
import { connectH2, type H2Session, type H2SessionOptions, type H2Stream } from "../../src/h2/index.js";
import { readFrames } from "./test-frames.js";
import {
  cleanups,
  closeAll,
  closesWithin,
  deferred,
  echo,
  engineServer,
  goawayCode,
  MiB,
  nodeCall,
  nodeClient,
  type RawFrame,
  type Reply,
  rawPeer,
  requestFields,
  requestFrame,
  sha256,
  sleep,
  until,
  waitFor,
} from "./test-peers.js";

afterEach(closeAll);

const { NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR, NGHTTP2_REFUSED_STREAM } = http2.constants;

describe("serveH2 against node:http2 clients", { timeout: 10_000 }, () => {
  const engineSettings: H2SessionOptions = {
    settings: { maxConcurrentStreams: 1000, initialWindowSize: MiB, maxHeaderListSize: 64 * 1024 },
    connectionWindowSize: 8 * MiB,
  };

  for (const [name, options] of [
    ["default windows", {}],
    ["the gateway's settings", engineSettings],
  ] as const) {
    it(`moves 5 MiB both ways byte-exact with ${name}`, async () => {
      const server = await engineServer(options);
      const client = nodeClient(server.port);
      const body = randomBytes(5 * MiB);
      const reply = await nodeCall(client, { ":path": "/echo" }, body);
      expect(reply.headers[":status"]).toBe(200);
      expect(reply.body.length).toBe(body.length);
      expect(sha256(reply.body)).toBe(sha256(body));
    });
  }

  it("holds writes back while the client does not read (write() false, then 'drain')", async () => {
    const total = 5 * MiB;
    const chunk = randomBytes(64 * 1024);
    let accepted = 0;
    let refusals = 0;
    let drains = 0;
    const server = await engineServer({}, (stream) => {
      stream.respond({ ":status": 200 });
      const pump = () => {
        while (accepted < total) {
          accepted += chunk.length;
          if (!stream.write(chunk)) {
            refusals++;
            stream.once("drain", () => {
              drains++;
              pump();
            });
            return;
          }
        }
        stream.end();
      };
      pump();
    });
    const client = nodeClient(server.port);
    const received: Buffer[] = [];
    let acceptedWhilePaused = 0;
    const reply = new Promise<void>((resolve, reject) => {
      const req = client.request({ ":path": "/download" });
      req.pause();
      setTimeout(() => {
        acceptedWhilePaused = accepted;
        req.on("data", (c: Buffer) => received.push(c));
        req.resume();
      }, 300);
      req.on("end", resolve);
      req.on("error", reject);
    });
    await reply;
    expect(refusals).toBeGreaterThan(0);
    expect(drains).toBe(refusals);
    // Nothing runs ahead of the reader: a window (64 KiB) and a chunk or two, not the 5 MiB.
    expect(acceptedWhilePaused).toBeLessThan(512 * 1024);
    const all = Buffer.concat(received);
    expect(all.length).toBe(total);
    expect(all.subarray(total - chunk.length).equals(chunk)).toBe(true);
  });

  it("answers 200 concurrent streams on one connection", async () => {
    const server = await engineServer();
    const client = nodeClient(server.port);
    const replies = await Promise.all(
      Array.from({ length: 200 }, (_, i) => nodeCall(client, { ":path": `/s/${i}` }, `body ${i} `.repeat(i + 1))),
    );
    replies.forEach((reply, i) => {
      expect(reply.headers["x-path"]).toBe(`/s/${i}`);
      expect(reply.body.toString()).toBe(`body ${i} `.repeat(i + 1));
    });
    expect(server.sessions).toHaveLength(1);
  });

  it("sends a request given as a header list field by field, in order, `__proto__` and a repeated name included", async () => {
    const seen: string[][] = [];
    const { url } = await nodeServer({}, (stream, _headers, rawHeaders) => {
      seen.push(rawHeaders);
      stream.respond({ ":status": 204 }, { endStream: true });
    });
    const session = engineClient(url);
    const stream = session.requestFields(
      [
        [":method", "GET"],
        [":scheme", "http"],
        [":authority", "upstream.test"],
        [":path", "/fields"],
        ["x-b", "1"],
        ["__proto__", "p"],
        ["x-a", "2"],
        ["x-b", "3"],
      ],
      { endStream: true },
    );
    stream.on("data", () => {});
    await waitFor(stream, "close");
    expect(seen[0]).toEqual([
      ":method",
      "GET",
      ":scheme",
      "http",
      ":authority",
      "upstream.test",
      ":path",
      "/fields",
      "x-b",
      "1",
      "__proto__",
      "p",
      "x-a",
      "2",
      "x-b",
      "3",
    ]);
  });

  it("shares the connection window among 8 concurrent 1 MiB streams (node's 64 KiB connection window)", async () => {
    const server = await engineServer();
    const client = nodeClient(server.port);
    const bodies = Array.from({ length: 8 }, () => randomBytes(MiB));
    const replies = await Promise.all(bodies.map((body, i) => nodeCall(client, { ":path": `/${i}` }, body)));
    replies.forEach((reply, i) => {
      expect(sha256(reply.body)).toBe(sha256(bodies[i] as Buffer));
    });
  });

  it("sends trailers after 'wantTrailers'", async () => {
    const server = await engineServer();
    const client = nodeClient(server.port);
    const reply = await nodeCall(client, { ":path": "/t", "x-trailers": "1" }, "hello");
    expect(reply.body.toString()).toBe("hello");
    expect(reply.trailers).toMatchObject({ "x-echo": "done", "x-path": "/t" });
    // The end waits for the flow-control windows, and the trailers for the end.
    const big = randomBytes(MiB);
    const held = await nodeCall(client, { ":path": "/t1", "x-trailers": "1" }, big);
    expect(sha256(held.body)).toBe(sha256(big));
    expect(held.trailers).toMatchObject({ "x-echo": "done", "x-path": "/t1" });
    const empty = await nodeCall(client, { ":path": "/t2", "x-trailers": "1" });
    expect(empty.body.length).toBe(0);
    expect(empty.trailers).toMatchObject({ "x-echo": "done", "x-path": "/t2" });
    // Trailers sent on a later turn than 'wantTrailers' (node:http2 waits for them too).
    const later = await nodeCall(client, { ":path": "/t3", "x-trailers": "later" }, "late");
    expect(later.body.toString()).toBe("late");
    expect(later.trailers).toMatchObject({ "x-echo": "done", "x-path": "/t3" });
  });

  it("aborts a stream the client cancels mid-body and keeps serving the connection", async () => {
    const events: string[] = [];
    const gotData = deferred<H2Stream>();
    const server = await engineServer({}, (stream, headers) => {
      if (headers[":path"] !== "/cancel") return echo(stream, headers);
      stream.respond({ ":status": 200 });
      stream.on("data", () => gotData.resolve(stream));
      stream.on("aborted", () => events.push("aborted"));
      stream.on("close", () => events.push("close"));
    });
    const client = nodeClient(server.port);
    const req = client.request({ ":method": "POST", ":path": "/cancel" });
    req.on("error", () => {});
    req.write(Buffer.alloc(1000));
    const stream = await gotData.promise;
    req.close(NGHTTP2_CANCEL);
    await waitFor(stream, "close");
    expect(events).toEqual(["aborted", "close"]);
    expect(stream.destroyed).toBe(true);
    expect(stream.rstCode).toBe(NGHTTP2_CANCEL);
    const reply = await nodeCall(client, { ":path": "/after" }, "still here");
    expect(reply.body.toString()).toBe("still here");
  });

  it("drops the held-back answer of a stream the client cancels and keeps the connection window", async () => {
    const blocked = deferred<H2Stream>();
    const server = await engineServer({}, (stream, headers) => {
      if (headers[":path"] !== "/download") return echo(stream, headers);
      stream.respond({ ":status": 200 });
      const chunk = Buffer.alloc(64 * 1024);
      const pump = () => {
        while (stream.write(chunk));
        if (!stream.closed) {
          stream.once("drain", pump);
          blocked.resolve(stream);
        }
      };
      pump();
    });
    const client = nodeClient(server.port);
    const req = client.request({ ":path": "/download" });
    req.on("error", () => {});
    req.pause();
    const stream = await blocked.promise;
    const aborted = waitFor(stream, "aborted");
    const closed = waitFor(stream, "close");
    req.close(NGHTTP2_CANCEL);
    await Promise.all([aborted, closed]);
    const body = randomBytes(MiB);
    expect(sha256((await nodeCall(client, { ":path": "/after" }, body)).body)).toBe(sha256(body));
  });

  it("refuses a stream beyond maxConcurrentStreams", async () => {
    const held: H2Stream[] = [];
    const server = await engineServer({ settings: { maxConcurrentStreams: 2 } }, (stream) => {
      held.push(stream);
      stream.on("data", () => {});
    });
    const client = nodeClient(server.port);
    // Sent with the preface, before the client has the server's SETTINGS.
    const calls = [1, 2, 3].map((i) => nodeCall(client, { ":path": `/${i}` }).catch((error) => error));
    const third = await closesWithin(calls[2] as Promise<unknown>, 3000);
    expect((third as { rstCode: number }).rstCode).toBe(NGHTTP2_REFUSED_STREAM);
    expect(held).toHaveLength(2);
    for (const stream of held) {
      stream.respond({ ":status": 200 });
      stream.end(Buffer.from(`ok ${stream.id}`));
    }
    const [first, second] = (await Promise.all(calls.slice(0, 2))) as Reply[];
    expect(first?.body.toString()).toBe("ok 1");
    expect(second?.body.toString()).toBe("ok 3");
    // A slot is free again.
    const fourth = nodeCall(client, { ":path": "/4" });
    await sleep(50);
    (held[2] as H2Stream).respond({ ":status": 204 }, { endStream: true });
    expect((await fourth).headers[":status"]).toBe(204);
  });

  it("lets the stream in flight finish after session.close(), refuses new ones, then closes the socket", async () => {
    const held = deferred<H2Stream>();
    let streams = 0;
    const server = await engineServer({}, (stream) => {
      streams++;
      held.resolve(stream);
    });
    const client = nodeClient(server.port);
    const first = nodeCall(client, { ":path": "/slow" });
    const stream = await held.promise;
    const session = server.sessions[0] as H2Session;
    const goaway = waitFor(client, "goaway");
    const clientClosed = waitFor(client, "close");
    session.close();
    // Crosses the GOAWAY on the wire.
    const crossing = nodeCall(client, { ":path": "/late" }).catch((error) => error);
    await goaway;
    expect(() => client.request({ ":path": "/later" })).toThrow();
    expect(((await crossing) as { rstCode: number }).rstCode).toBe(NGHTTP2_REFUSED_STREAM);
    expect(session.closed).toBe(true);
    expect(session.destroyed).toBe(false);
    stream.respond({ ":status": 200 });
    stream.end(Buffer.from("finished"));
    expect((await first).body.toString()).toBe("finished");
    await clientClosed;
    expect(session.destroyed).toBe(true);
    expect(session.socket.destroyed).toBe(true);
    expect(streams).toBe(1);
  });

  it("ignores streams opened after its GOAWAY and closes the socket itself once the last stream is done", async () => {
    let streams = 0;
    const held = deferred<H2Stream>();
    const server = await engineServer({}, (stream) => {
      streams++;
      held.resolve(stream);
    });
    // A raw client: it neither closes on GOAWAY nor stops opening streams, so what happens is the engine's doing.
    const peer = await rawPeer(server.port);
    const encoder = createHpackEncoder();
    const get = (id: number, path: string) => requestFrame(encoder, id, path, true, [], "GET");
    peer.socket.write(get(1, "/first"));
    const stream = await held.promise;
    (server.sessions[0] as H2Session).close();
    await until(() => goawayCode(peer) !== undefined);
    expect(goawayCode(peer)).toBe(H2Error.noError);
    expect(peer.frames.find((f) => f.type === FrameType.goaway)?.payload.readUInt32BE(0)).toBe(1);
    peer.socket.write(get(3, "/late"));
    await sleep(50);
    expect(streams).toBe(1);
    expect(peer.socket.destroyed).toBe(false);
    stream.respond({ ":status": 200 });
    stream.end(Buffer.from("done"));
    await closesWithin(peer.closed, 2000);
    const data = peer.frames.filter((f) => f.type === FrameType.data);
    expect(data.map((f) => [f.id, f.payload.toString()])).toEqual([[1, "done"]]);
    expect(peer.frames.some((f) => f.id === 3)).toBe(false);
  });

  for (const [shape, trickle] of [
    ["HEADERS without END_HEADERS", false],
    ["a HEADERS frame trickling in byte by byte", true],
  ] as const) {
    it(`cuts a connection whose header block does not complete within headersTimeoutMs (${shape})`, async () => {
      const server = await engineServer({ headersTimeoutMs: 300 });
      const slow = await rawPeer(server.port);
      const started = Date.now();
      let trickling: NodeJS.Timeout | undefined;
      if (!trickle) {
        // `:method GET`, then nothing.
        slow.socket.write(frame(FrameType.headers, 0, 1, Buffer.from([0x82])));
      } else {
        const headers = frame(FrameType.headers, FrameFlag.endHeaders, 1, Buffer.alloc(200, 0x82));
        let sent = 0;
        trickling = setInterval(() => slow.socket.write(headers.subarray(sent, ++sent)), 20);
        cleanups.push(() => clearInterval(trickling));
      }
      const other = nodeClient(server.port);
      expect((await nodeCall(other, { ":path": "/other" }, "fine")).body.toString()).toBe("fine");
      await closesWithin(slow.closed, 2000);
      clearInterval(trickling);
      const elapsed = Date.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(250);
      expect(elapsed).toBeLessThan(1500);
      expect((await nodeCall(other, { ":path": "/other" }, "still fine")).body.toString()).toBe("still fine");
    });
  }

  it("does not run the header timer on a body whose reads end mid-frame after a split HEADERS frame", async () => {
    const received = deferred<number>();
    const server = await engineServer({ headersTimeoutMs: 300 }, (stream) => {
      let bytes = 0;
      stream.on("data", (chunk: Buffer) => {
        bytes += chunk.length;
      });
      stream.on("end", () => {
        received.resolve(bytes);
        stream.respond({ ":status": 204 }, { endStream: true });
      });
    });
    const peer = await rawPeer(server.port);
    const wire = [requestFrame(createHpackEncoder(), 1, "/upload", false)];
    for (let i = 0; i < 8; i++) wire.push(frame(FrameType.data, i === 7 ? FrameFlag.endStream : 0, 1, Buffer.alloc(1000)));
    const bytes = Buffer.concat(wire);
    // Reads of 1 000 bytes, 60 ms apart: the HEADERS frame is split, every read after it ends inside a DATA frame.
    for (let start = 0, end = 5; start < bytes.length; start = end, end += 1000) {
      peer.socket.write(bytes.subarray(start, end));
      await sleep(60);
    }
    expect(await closesWithin(received.promise, 2000)).toBe(8000);
    await sleep(50);
    expect(peer.socket.destroyed).toBe(false);
    expect(goawayCode(peer)).toBeUndefined();
    expect(peer.frames.some((f) => f.type === FrameType.headers && f.id === 1)).toBe(true);
  });

  it("closes an idle connection with GOAWAY after idleTimeoutMs", async () => {
    const server = await engineServer({ idleTimeoutMs: 300 });
    const client = nodeClient(server.port);
    await nodeCall(client, { ":path": "/one" }, "x");
    const started = Date.now();
    const [code] = await waitFor<[number]>(client, "goaway", 2000);
    expect(code).toBe(H2Error.noError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    await waitFor(client, "close", 2000);
  });

  it("answers 431 to a header list over maxHeaderListSize and keeps the connection", async () => {
    const server = await engineServer({ settings: { maxHeaderListSize: 2048 } });
    const client = nodeClient(server.port);
    const big = "b".repeat(3000);
    const rejected = await nodeCall(client, { ":path": "/big", "x-big": big, "x-small": "s" });
    expect(rejected.headers[":status"]).toBe(431);
    // The HPACK tables stay in step: the same fields again (now indexed by node), then other ones.
    const small = await nodeCall(client, { ":path": "/small", "x-small": "s" }, "ok");
    expect(small.headers[":status"]).toBe(200);
    expect(small.body.toString()).toBe("ok");
    expect((await nodeCall(client, { ":path": "/big", "x-big": big })).headers[":status"]).toBe(431);
    expect((await nodeCall(client, { ":path": "/again", "x-small": "s" }, "ok")).headers["x-path"]).toBe("/again");
    expect(server.sessions).toHaveLength(1);
  });

  it("acks node's PING", async () => {
    const server = await engineServer();
    const client = nodeClient(server.port);
    await waitFor(client, "connect");
    const payload = Buffer.from("pingpong");
    const ack = await new Promise<Buffer>((resolve, reject) =>
      client.ping(payload, (error, _duration, echoed) => (error ? reject(error) : resolve(echoed))),
    );
    expect(ack.equals(payload)).toBe(true);
  });

  it("resets a stream whose peer sends more than the window it was given while nobody reads", async () => {
    const window = 16_384;
    const held: H2Stream[] = [];
    // The handler does not read (as while the gateway waits for the auth service).
    const server = await engineServer({ settings: { initialWindowSize: window } }, (stream) => held.push(stream));
    const peer = await rawPeer(server.port);
    peer.socket.write(requestFrame(createHpackEncoder(), 1, "/a.B/C", false));
    // The handler has the stream before the data comes (a DATA frame is checked against the window
    // from its header on: in the same read as the HEADERS, the stream would be reset before any handler saw it).
    await until(() => held.length === 1);
    for (let sent = 0; sent <= window + 65_536; sent += 16_384) {
      peer.socket.write(frame(FrameType.data, 0, 1, Buffer.alloc(16_384)));
    }
    await until(() => peer.frames.some((f) => f.type === FrameType.rstStream && f.id === 1));
    const reset = peer.frames.find((f) => f.type === FrameType.rstStream && f.id === 1);
    expect(reset?.payload.readUInt32BE(0)).toBe(H2Error.flowControlError);
    expect(held[0]?.destroyed).toBe(true);
    // Only that stream: the connection is not torn down.
    expect(server.sessions[0]?.destroyed).toBe(false);
  });

  it("delivers a DATA frame cut by the end of a read as its bytes arrive, and the body whole and in order", async () => {
    const received: Buffer[] = [];
    let ended = false;
    const server = await engineServer({}, (stream) => {
      stream.on("data", (chunk: Buffer) => received.push(Buffer.from(chunk)));
      stream.on("end", () => {
        ended = true;
        stream.respond({ ":status": 200 }, { endStream: true });
      });
    });
    const peer = await rawPeer(server.port);
    const block = createHpackEncoder().encode(requestFields("POST", "/a.B/C", [["content-length", "20000"]]));
    const body = randomBytes(20_000);
    const wire = Buffer.concat([
      frame(FrameType.headers, FrameFlag.endHeaders, 1, block),
      frame(FrameType.data, 0, 1, body.subarray(0, 16_384)),
      frame(FrameType.data, FrameFlag.endStream, 1, body.subarray(16_384)),
    ]);
    // The HEADERS, the first frame's header and half of its payload: that half reaches the handler now.
    const cut = block.length + 9 + 9 + 8_192;
    peer.socket.write(wire.subarray(0, cut));
    await until(() => received.reduce((n, b) => n + b.length, 0) === 8_192);
    // Then the rest in odd pieces, one of them inside the second frame's header.
    const cuts = [cut + 100, cut + 8_192 + 4, cut + 8_192 + 12, wire.length];
    let from = cut;
    for (const to of cuts) {
      peer.socket.write(wire.subarray(from, to));
      from = to;
      await sleep(5);
    }
    await until(() => ended);
    expect(Buffer.concat(received).equals(body)).toBe(true);
    await until(() => peer.frames.some((f) => f.type === FrameType.headers && f.id === 1));
    expect(peer.frames.some((f) => f.type === FrameType.rstStream)).toBe(false);
  });

  it("hands the DATA frames of a stream that arrive in one read to its reader as one chunk, in order, before the end", async () => {
    const events = new Map<number, Array<string | Buffer>>();
    const server = await engineServer({}, (stream) => {
      const log: Array<string | Buffer> = [];
      events.set(stream.id, log);
      stream.on("data", (chunk: Buffer) => log.push(Buffer.from(chunk)));
      stream.on("end", () => {
        log.push("end");
        stream.respond({ ":status": 200 }, { endStream: true });
      });
    });
    const peer = await rawPeer(server.port);
    const encoder = createHpackEncoder();
    peer.socket.write(Buffer.concat([requestFrame(encoder, 1, "/a.B/C", false), requestFrame(encoder, 3, "/a.B/C", false)]));
    await until(() => events.size === 2);
    // 50 small messages on each of two streams, interleaved, then trailers for stream 1 and END_STREAM for 3: one write.
    const bodies = new Map<number, Buffer[]>([
      [1, []],
      [3, []],
    ]);
    const frames: Buffer[] = [];
    for (let i = 0; i < 50; i++) {
      for (const id of [1, 3]) {
        const message = randomBytes(21);
        bodies.get(id)?.push(message);
        frames.push(frame(FrameType.data, 0, id, message));
      }
    }
    frames.push(frame(FrameType.headers, FrameFlag.endHeaders | FrameFlag.endStream, 1, encoder.encode([["x-t", "1"]])));
    frames.push(frame(FrameType.data, FrameFlag.endStream, 3, Buffer.alloc(0)));
    peer.socket.write(Buffer.concat(frames));
    await until(() => [...events.values()].every((log) => log.at(-1) === "end"));
    for (const id of [1, 3]) {
      // Before: 50 'data' events of 21 bytes each; a reader (the gateway's pass-through) wrote each on as a DATA frame of its own.
      expect(events.get(id)).toEqual([Buffer.concat(bodies.get(id) ?? []), "end"]);
    }
  });

  for (const [name, bad, code] of [
    ["DATA on stream 0", frame(FrameType.data, 0, 0, Buffer.from("x")), H2Error.protocolError],
    ["a frame over 16 384 bytes", frame(FrameType.data, 0, 1, Buffer.alloc(16_385)), H2Error.frameSizeError],
    [
      "a bad HPACK block",
      frame(FrameType.headers, FrameFlag.endHeaders | FrameFlag.endStream, 1, Buffer.from([0xbf, 0xff, 0xff])),
      H2Error.compressionError,
    ],
  ] as const) {
    it(`answers ${name} with GOAWAY and closes`, async () => {
      const server = await engineServer();
      const peer = await rawPeer(server.port);
      peer.socket.write(bad);
      await closesWithin(peer.closed, 2000);
      expect(goawayCode(peer)).toBe(code);
      expect(server.sessions[0]?.destroyed).toBe(true);
      // The server lives on.
      expect((await nodeCall(nodeClient(server.port), { ":path": "/" }, "alive")).body.toString()).toBe("alive");
    });
  }

  it("writes the answer of a stream alone on its connection at once, before the rest of the event-loop turn", async () => {
    const written: number[] = [];
    const server = await engineServer({}, (stream) => {
      stream.respond({ ":status": 200 });
      stream.on("data", () => {});
      stream.on("end", () => {
        const socket = (server.sessions[0] as H2Session).socket;
        const before = socket.bytesWritten;
        stream.end(Buffer.from("done"));
        written.push(socket.bytesWritten - before);
      });
    });
    const client = nodeClient(server.port);
    const reply = await nodeCall(client, { ":path": "/alone", ":method": "POST" }, Buffer.from("hi"));
    expect(reply.body.toString()).toBe("done");
    // HEADERS, DATA and the END_STREAM frame went to the socket inside end().
    expect(written[0]).toBeGreaterThan(0);
  });
});

// --- client role: the engine calls node:http2 servers ---

async function nodeServer(
  options: http2.ServerOptions,
  onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, rawHeaders: string[]) => void = nodeEcho,
): Promise<{ url: string; server: http2.Http2Server }> {
  const server = http2.createServer(options);
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
    session.on("error", () => {});
  });
  server.on(
    "stream",
    (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
      stream.on("error", () => {});
      onStream(stream, headers, rawHeaders);
    },
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => {
    for (const session of sessions) session.destroy();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, server };
}

function nodeEcho(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
  stream.respond({ ":status": 200, "x-path": headers[":path"] });
  stream.pipe(stream);
}

function engineClient(url: string, options: H2SessionOptions = {}): H2Session {
  const session = connectH2({ url, ...options });
  session.on("error", () => {});
  cleanups.push(() => session.destroy());
  return session;
}

interface EngineReply extends Reply {
  /** The stream's events in order (a run of 'data' events counted once). */
  events: string[];
}

/** One request on the engine; the body goes out in 64 KiB writes, waiting for 'drain' when told. */
function engineCall(session: H2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer): Promise<EngineReply> {
  return new Promise((resolve, reject) => {
    const stream = session.request(
      { ":method": body === undefined ? "GET" : "POST", ...headers },
      {
        endStream: body === undefined,
      },
    );
    const events: string[] = [];
    const chunks: Buffer[] = [];
    let response: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | undefined;
    stream.on("response", (h: http2.IncomingHttpHeaders) => {
      events.push("response");
      response = h;
    });
    stream.on("data", (chunk: Buffer) => {
      if (events.at(-1) !== "data") events.push("data");
      chunks.push(chunk);
    });
    stream.on("trailers", (t: http2.IncomingHttpHeaders) => {
      events.push("trailers");
      trailers = t;
    });
    stream.on("end", () => events.push("end"));
    stream.on("error", (error: Error) => reject(Object.assign(error, { rstCode: stream.rstCode })));
    stream.on("close", () => {
      events.push("close");
      if (stream.readableEnded) resolve({ headers: response, body: Buffer.concat(chunks), trailers, events });
      else reject(Object.assign(new Error(`closed early (rstCode ${stream.rstCode})`), { rstCode: stream.rstCode }));
    });
    if (body === undefined) return;
    let offset = 0;
    const pump = () => {
      while (offset < body.length) {
        const piece = body.subarray(offset, offset + 64 * 1024);
        offset += piece.length;
        if (!stream.write(piece)) {
          stream.once("drain", pump);
          return;
        }
      }
      stream.end();
    };
    pump();
  });
}

describe("connectH2 against node:http2 servers", { timeout: 10_000 }, () => {
  for (const [name, options] of [
    ["default settings", {}],
    ["a 1 KiB initial window on the server", { settings: { initialWindowSize: 1024 } }],
  ] as const) {
    it(`moves 5 MiB both ways byte-exact with ${name}`, async () => {
      const { url } = await nodeServer(options);
      const session = engineClient(url);
      const body = randomBytes(5 * MiB);
      const reply = await engineCall(session, { ":path": "/echo" }, body);
      expect(reply.headers[":status"]).toBe(200);
      expect(reply.body.length).toBe(body.length);
      expect(sha256(reply.body)).toBe(sha256(body));
    });
  }

  it("shares the connection window among 8 concurrent 1 MiB streams (node's 64 KiB connection window)", async () => {
    const { url } = await nodeServer({});
    const session = engineClient(url);
    const bodies = Array.from({ length: 8 }, () => randomBytes(MiB));
    const replies = await Promise.all(bodies.map((body, i) => engineCall(session, { ":path": `/${i}` }, body)));
    replies.forEach((reply, i) => {
      expect(sha256(reply.body)).toBe(sha256(bodies[i] as Buffer));
    });
  });

  for (const code of [NGHTTP2_REFUSED_STREAM, NGHTTP2_INTERNAL_ERROR]) {
    it(`reports a reset by the server (code ${code})`, async () => {
      const { url } = await nodeServer({}, (stream) => stream.close(code));
      const session = engineClient(url);
      const listened = session.request({ ":path": "/reset" }, { endStream: true });
      const events: string[] = [];
      listened.on("error", (error: NodeJS.ErrnoException) => events.push(`error ${error.code}`));
      listened.on("close", () => events.push("close"));
      await waitFor(listened, "close");
      expect(events).toEqual(["error ERR_HTTP2_STREAM_ERROR", "close"]);
      expect(listened.rstCode).toBe(code);
      // Without an 'error' listener: 'close' only, no uncaught exception.
      const quiet = session.request({ ":path": "/quiet" }, { endStream: true });
      await waitFor(quiet, "close");
      expect(quiet.rstCode).toBe(code);
      expect(quiet.destroyed).toBe(true);
    });
  }

  for (const when of ["at once", "after the server's SETTINGS"]) {
    it(`queues requests beyond the server's maxConcurrentStreams (${when})`, async () => {
      let active = 0;
      let peak = 0;
      const { url } = await nodeServer({ settings: { maxConcurrentStreams: 2 } }, (stream, headers) => {
        active++;
        peak = Math.max(peak, active);
        stream.on("close", () => active--);
        setTimeout(() => {
          if (stream.destroyed) return;
          stream.respond({ ":status": 200 });
          stream.end(`answer ${headers[":path"]}`);
        }, 20);
      });
      const session = engineClient(url);
      if (when !== "at once") await waitFor(session, "remoteSettings");
      const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => engineCall(session, { ":path": `/${i}` })));
      replies.forEach((reply, i) => {
        expect(reply.body.toString()).toBe(`answer /${i}`);
      });
      expect(peak).toBeLessThanOrEqual(2);
    });
  }

  it("keeps answering other streams while paused streams hold more than the connection window", async () => {
    // One upstream connection carries every caller's streams; a caller that stops reading pauses
    // its stream (a zero-window reader). Its unread data must not use up the shared connection
    // window, or every other answer on the connection stalls behind it.
    const answer = randomBytes(200 * 1024);
    const { url } = await nodeServer({}, (stream) => {
      stream.respond({ ":status": 200 });
      stream.end(answer);
    });
    // Streams may each take 64 KiB, the connection 128 KiB: two paused streams hold all of it.
    const session = engineClient(url, { settings: { initialWindowSize: 65_535 }, connectionWindowSize: 131_072 });
    const paused: H2Stream[] = [];
    for (let i = 0; i < 3; i++) {
      const stream = session.request({ ":path": `/paused/${i}` }, { endStream: true });
      stream.on("data", () => {});
      stream.pause();
      paused.push(stream);
    }
    await until(() => paused.every((stream) => stream.recvWindow <= 0));
    const reply = await closesWithin(engineCall(session, { ":path": "/reader" }), 3000);
    expect(sha256(reply.body)).toBe(sha256(answer));
    // The paused streams still get the rest of their answers once they read.
    const rest = await Promise.all(
      paused.map(
        (stream) =>
          new Promise<number>((resolve) => {
            let bytes = 0;
            stream.removeAllListeners("data");
            stream.on("data", (chunk: Buffer) => {
              bytes += chunk.length;
            });
            stream.on("end", () => resolve(bytes));
            stream.resume();
          }),
      ),
    );
    expect(rest).toEqual([answer.length, answer.length, answer.length]);
  });

  it("finishes the streams in flight when the server sends GOAWAY, then closes", async () => {
    const held: http2.ServerHttp2Stream[] = [];
    const both = deferred<void>();
    const { url } = await nodeServer({}, (stream) => {
      held.push(stream);
      if (held.length === 2) both.resolve();
    });
    const session = engineClient(url);
    const goaway = waitFor(session, "goaway");
    const closed = waitFor(session, "close");
    const calls = [engineCall(session, { ":path": "/a" }), engineCall(session, { ":path": "/b" }, Buffer.from("b"))];
    await both.promise;
    (held[0] as http2.ServerHttp2Stream).session?.close();
    const [code] = await goaway;
    expect(code).toBe(H2Error.noError);
    expect(session.closed).toBe(true);
    expect(() => session.request({ ":path": "/new" })).toThrow();
    for (const stream of held) {
      stream.respond({ ":status": 200 });
      stream.end("done");
    }
    for (const reply of await Promise.all(calls)) expect(reply.body.toString()).toBe("done");
    await closed;
    expect(session.destroyed).toBe(true);
  });

  it("fails fast when nobody listens", async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const session = connectH2({ url: `http://127.0.0.1:${port}` });
    cleanups.push(() => session.destroy());
    const sessionError = waitFor<[Error]>(session, "error", 2000);
    const sessionClosed = waitFor(session, "close", 2000);
    const listened = session.request({ ":path": "/" }, { endStream: true });
    const streamError = waitFor<[Error]>(listened, "error", 2000);
    const listenedClosed = waitFor(listened, "close", 2000);
    const unlistened = session.request({ ":method": "POST", ":path": "/" });
    unlistened.write(Buffer.from("body"));
    const unlistenedClosed = waitFor(unlistened, "close", 2000);
    const [error] = await sessionError;
    expect((error as NodeJS.ErrnoException).code).toBe("ECONNREFUSED");
    expect((await streamError)[0]).toBeInstanceOf(Error);
    await Promise.all([sessionClosed, listenedClosed, unlistenedClosed]);
    expect(session.destroyed).toBe(true);
    expect(() => session.request({ ":path": "/" })).toThrow();
  });

  it("delivers a gRPC-shaped answer as response, data, trailers, end, close", async () => {
    const { url } = await nodeServer({}, (stream) => {
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0", "grpc-message": "OK" }));
      stream.write(Buffer.from([0, 0, 0, 0, 2, 8, 1]));
      stream.end(Buffer.from([0, 0, 0, 0, 2, 8, 2]));
    });
    const session = engineClient(url);
    const reply = await engineCall(
      session,
      { ":path": "/pkg.Svc/Call", "content-type": "application/grpc", te: "trailers" },
      Buffer.from([0, 0, 0, 0, 0]),
    );
    expect(reply.events).toEqual(["response", "data", "trailers", "end", "close"]);
    expect(reply.headers["content-type"]).toBe("application/grpc");
    expect(reply.body.equals(Buffer.from([0, 0, 0, 0, 2, 8, 1, 0, 0, 0, 0, 2, 8, 2]))).toBe(true);
    expect(reply.trailers).toMatchObject({ "grpc-status": "0", "grpc-message": "OK" });
  });

  it("batches a request's frames once per event-loop turn, alone or not (the pooled upstream connection's writes stay one per turn)", async () => {
    const { url } = await nodeServer({});
    const session = engineClient(url);
    await engineCall(session, { ":path": "/warm" });
    const socket = session.socket;
    // Alone or with another stream open, a request's frames reach the socket at the end of the turn,
    // with those of every other request made in it: one write for all of them.
    const alone = session.request({ ":method": "POST", ":path": "/alone" });
    alone.on("data", () => {});
    let before = socket.bytesWritten;
    alone.end(Buffer.from("ping"));
    expect(socket.bytesWritten).toBe(before);
    await new Promise((resolve) => setImmediate(resolve));
    expect(socket.bytesWritten).toBeGreaterThan(before);
    await waitFor(alone, "close");
    const first = session.request({ ":method": "POST", ":path": "/first" });
    const second = session.request({ ":method": "POST", ":path": "/second" });
    for (const stream of [first, second]) stream.on("data", () => {});
    before = socket.bytesWritten;
    first.end(Buffer.from("one"));
    second.end(Buffer.from("two"));
    expect(socket.bytesWritten).toBe(before);
    await new Promise((resolve) => setImmediate(resolve));
    expect(socket.bytesWritten).toBeGreaterThan(before);
    await Promise.all([waitFor(first, "close"), waitFor(second, "close")]);
  });
});

describe("connectH2's DATA frames as an upstream receives them", () => {
  /** A raw upstream that answers the preface with SETTINGS and records the frames of each stream. */
  async function recordingUpstream(): Promise<{ url: string; frames: (id: number) => string[] }> {
    const received: RawFrame[] = [];
    const server = net.createServer({ noDelay: true }, (socket) => {
      let inbuf: Buffer = Buffer.alloc(0);
      let preface = true;
      socket.on("error", () => {});
      socket.write(settingsFrame([]));
      socket.on("data", (chunk: Buffer) => {
        inbuf = Buffer.concat([inbuf, chunk]);
        if (preface) {
          if (inbuf.length < CLIENT_PREFACE.length) return;
          inbuf = inbuf.subarray(CLIENT_PREFACE.length);
          preface = false;
        }
        const { frames, rest } = readFrames(inbuf);
        received.push(...frames);
        inbuf = rest;
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => server.close());
    const name = (f: RawFrame) =>
      `${f.type === FrameType.headers ? "HEADERS" : f.type === FrameType.data ? `DATA ${f.payload.length}` : `type ${f.type}`}${
        f.flags & FrameFlag.endStream ? " END_STREAM" : ""
      }`;
    return {
      url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
      frames: (id) => received.filter((f) => f.id === id && f.type !== FrameType.windowUpdate).map(name),
    };
  }

  it("ends a request on its last DATA frame when the end follows the data before the flush, as the caller sent it", async () => {
    const upstream = await recordingUpstream();
    const session = engineClient(upstream.url);
    // Streams made before the upstream's SETTINGS wait and go out together when it comes.
    await waitFor(session, "remoteSettings");
    // A unary call: the body and the end in the same turn (the caller's DATA frame with END_STREAM).
    const unary = session.request({ ":method": "POST", ":path": "/unary" });
    unary.write(Buffer.from("hello"));
    unary.end();
    // The end comes a turn later (the body went out already): an empty DATA frame ends the stream.
    const later = session.request({ ":method": "POST", ":path": "/later" });
    later.write(Buffer.from("hello"));
    await new Promise((resolve) => setImmediate(resolve));
    later.end();
    // Another stream's DATA was queued after this one's: the end goes in a frame of its own.
    const first = session.request({ ":method": "POST", ":path": "/first" });
    const second = session.request({ ":method": "POST", ":path": "/second" });
    first.write(Buffer.from("one"));
    second.write(Buffer.from("two"));
    first.end();
    second.end();
    const ended = (id: number) => upstream.frames(id).at(-1)?.endsWith("END_STREAM") === true;
    await until(() => [unary, later, first, second].every((stream) => ended(stream.id)));
    expect(upstream.frames(unary.id)).toEqual(["HEADERS", "DATA 5 END_STREAM"]);
    expect(upstream.frames(later.id)).toEqual(["HEADERS", "DATA 5", "DATA 0 END_STREAM"]);
    expect(upstream.frames(first.id)).toEqual(["HEADERS", "DATA 3", "DATA 0 END_STREAM"]);
    expect(upstream.frames(second.id)).toEqual(["HEADERS", "DATA 3 END_STREAM"]);
  });
});
