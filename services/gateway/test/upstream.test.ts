import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { H2Session } from "../src/h2/index.js";
import { createUpstream, type Upstream } from "../src/upstream.js";

interface CountingServer {
  url: string;
  /** Connections the server accepted. */
  sessions: number;
  /** Requests answered, per connection (in accept order). */
  perSession: number[];
  close(): Promise<void>;
}

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** An h2c server that answers every request after `delayMs`, counting connections. */
async function countingServer(settings: http2.Settings = {}, delayMs = 0): Promise<CountingServer> {
  const server = http2.createServer({ settings });
  const counts: number[] = [];
  const sessions = new Map<http2.ServerHttp2Session, number>();
  server.on("session", (session) => {
    sessions.set(session, counts.length);
    counts.push(0);
  });
  server.on("stream", (stream) => {
    const index = sessions.get(stream.session as http2.ServerHttp2Session) ?? -1;
    stream.resume();
    setTimeout(() => {
      counts[index] = (counts[index] ?? 0) + 1;
      if (!stream.closed) stream.respond({ ":status": 200 }, { endStream: true });
    }, delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const result: CountingServer = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get sessions() {
      return counts.length;
    },
    perSession: counts,
    close: () =>
      new Promise<void>((resolve) => {
        for (const session of sessions.keys()) session.destroy();
        server.close(() => resolve());
      }),
  };
  closers.push(result.close);
  return result;
}

function upstreamOf(url: string, connections?: number, idleConnectionMs?: number): Upstream {
  const upstream = createUpstream({ service: "test.v1.Svc", targets: [url], protocol: "connect", connections, idleConnectionMs });
  closers.push(() => upstream.close());
  return upstream;
}

/** One request through the pool (with `body`, if any); resolves with the session it went over once answered. */
function call(upstream: Upstream, body?: Buffer): Promise<H2Session> {
  const session = upstream.pick().session();
  const stream = session.request({ ":method": "POST", ":path": "/test.v1.Svc/Call" }, { endStream: body === undefined });
  if (body !== undefined) stream.end(body);
  return new Promise((resolve, reject) => {
    stream.on("response", (headers) => {
      if (headers[":status"] !== 200) reject(new Error(`HTTP ${headers[":status"]}`));
    });
    stream.on("error", reject);
    stream.on("close", () => (stream.rstCode === 0 ? resolve(session) : reject(new Error(`reset ${stream.rstCode}`))));
    stream.resume();
  });
}

describe("upstream connection pool", () => {
  it("grants pooled streams 256 KiB in the connection's SETTINGS, and shut-window callers' streams 16 KiB on a connection of their own", async () => {
    // What the upstream sees: the initial stream window each gateway connection announced.
    const server = http2.createServer();
    const windows: number[] = [];
    server.on("stream", (stream) => {
      windows.push((stream.session as http2.ServerHttp2Session).remoteSettings.initialWindowSize ?? -1);
      stream.resume();
      stream.respond({ ":status": 200 }, { endStream: true });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const upstream = upstreamOf(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 1);
    const target = upstream.pick();
    const answered = (session: H2Session) =>
      new Promise<H2Session>((resolve, reject) => {
        const stream = session.request({ ":method": "POST", ":path": "/test.v1.Svc/Call" }, { endStream: true });
        stream.on("error", reject);
        stream.on("close", () => resolve(session));
        stream.resume();
      });
    const reader = await answered(target.session());
    const shut = await answered(target.session(true));
    const shutAgain = await answered(target.session(true));
    expect(windows).toEqual([256 * 1024, 16 * 1024, 16 * 1024]);
    expect(shut).not.toBe(reader);
    expect(shutAgain).toBe(shut);
    // The pool itself still has one connection, which every other call uses.
    expect(await answered(target.session())).toBe(reader);
  });

  it("a call routed before a reload, picking an address after it, is served by the new upstream", async () => {
    const before = await countingServer();
    const after = await countingServer();
    const old = upstreamOf(before.url);
    const routed = old; // what a route built before the reload holds
    old.close(upstreamOf(after.url)); // the reload: old upstream replaced
    await call(routed);
    expect(after.perSession).toEqual([1]);
    expect(before.sessions).toBe(0);
  });

  it("uses four connections per address by default, and every call goes over one of them", async () => {
    const server = await countingServer();
    const upstream = upstreamOf(server.url);
    for (let i = 0; i < 8; i++) await call(upstream);
    await Promise.all(Array.from({ length: 12 }, () => call(upstream)));
    expect(server.sessions).toBe(4);
    expect(server.perSession).toEqual([5, 5, 5, 5]);
  });

  it("puts streaming calls together on the first connection that can take them, while unary calls spread", async () => {
    const server = await countingServer({}, 150);
    const upstream = upstreamOf(server.url);
    const target = upstream.pick();
    const streams = Array.from({ length: 6 }, () => target.session(false, true));
    expect(new Set(streams).size).toBe(1);
    const unary = Array.from({ length: 4 }, () => target.session());
    expect(new Set(unary).size).toBe(4);
    // A stream arriving while unary calls use every connection still joins the streams' one.
    expect(target.session(false, true)).toBe(streams[0]);
  });

  it("with one connection configured, carries every call over it", async () => {
    const server = await countingServer();
    const upstream = upstreamOf(server.url, 1);
    for (let i = 0; i < 5; i++) await call(upstream);
    await Promise.all(Array.from({ length: 10 }, () => call(upstream)));
    expect(server.sessions).toBe(1);
    expect(server.perSession).toEqual([15]);
  });

  it("keeps the configured number of connections and spreads calls over them", async () => {
    const server = await countingServer();
    const upstream = upstreamOf(server.url, 3);
    for (let i = 0; i < 9; i++) await call(upstream);
    expect(server.sessions).toBe(3);
    expect(server.perSession).toEqual([3, 3, 3]);
  });

  it("adds a connection when every one is at the upstream's concurrent-stream limit, instead of queueing", async () => {
    const server = await countingServer({ maxConcurrentStreams: 2 }, 150);
    const upstream = upstreamOf(server.url, 1);
    // The first call learns the limit (the server's SETTINGS).
    await call(upstream);
    // Two streams fill the first connection; the rest go to a new one (whose limit is not known
    // until its SETTINGS arrive, so they wait there rather than open a connection each).
    const first = new Set(await Promise.all(Array.from({ length: 6 }, () => call(upstream))));
    expect(first.size).toBe(2);
    expect(server.sessions).toBe(2);
    // Both limits known: four calls fill them, the fifth and sixth open a third connection.
    const second = new Set(await Promise.all(Array.from({ length: 6 }, () => call(upstream))));
    expect(second.size).toBe(3);
    expect(server.sessions).toBe(3);
    expect(server.perSession.reduce((a, b) => a + b, 0)).toBe(13);
  });

  it("adds a connection when the upstream's connection window is spent by bodies in flight, instead of waiting for its credit", async () => {
    // node:http2's default: a 64 KiB connection window, credited back only as the server reads.
    const server = await countingServer({}, 150);
    const upstream = upstreamOf(server.url, 1);
    await call(upstream);
    // Four 64 KiB bodies at once: one spends the connection's window, the others get connections of their own.
    const sessions = new Set(await Promise.all(Array.from({ length: 4 }, () => call(upstream, Buffer.alloc(64 * 1024, 1)))));
    expect(sessions.size).toBe(4);
    expect(server.sessions).toBe(4);
    // Small bodies leave the window open: they go back to the first connection, not spread over the
    // burst's (one write carries many calls there, as before the burst).
    const after = new Set(await Promise.all(Array.from({ length: 8 }, () => call(upstream, Buffer.alloc(100, 1)))));
    expect(after.size).toBe(1);
    expect(server.sessions).toBe(4);
    expect(server.perSession.reduce((a, b) => a + b, 0)).toBe(13);
  });

  it("closes the connections a burst opened once they are idle, and keeps the configured one", async () => {
    const server = await countingServer({}, 150);
    const upstream = upstreamOf(server.url, 1, 300);
    const first = await call(upstream);
    const burst = new Set(await Promise.all(Array.from({ length: 4 }, () => call(upstream, Buffer.alloc(64 * 1024, 1)))));
    expect(burst.size).toBe(4);
    const extras = [...burst].filter((session) => session !== first);
    expect(extras).toHaveLength(3);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(extras.every((session) => session.closed || session.destroyed)).toBe(true);
    expect(first.closed || first.destroyed).toBe(false);
    // The next call goes over the connection that stayed.
    expect(await call(upstream)).toBe(first);
    expect(server.sessions).toBe(4);
  });
});
