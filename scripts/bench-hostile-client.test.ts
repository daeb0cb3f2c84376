// The fairness workload's attacker against a real HTTP/2 server (node:http2, which has nghttp2's
// flood limits): its frames arrive as the attacks they claim to be, a server that closes the
// connection is attacked again on a new one, and stop() always ends it.
import * as http2 from "node:http2";
import { afterEach, describe, expect, it } from "vitest";
import { type HostileAttack, startHostileClient } from "./bench-hostile-client.js";

let server: http2.Http2Server | undefined;
const sessions = new Set<http2.ServerHttp2Session>();
afterEach(async () => {
  for (const session of sessions) session.destroy();
  sessions.clear();
  const open = server;
  server = undefined;
  if (open) await new Promise((resolve) => open.close(resolve));
});

type OnStream = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void;
async function startServer(onStream: OnStream = () => {}) {
  server = http2.createServer();
  server.on("stream", (stream, headers) => {
    stream.on("error", () => {});
    onStream(stream, headers);
  });
  server.on("session", (session) => {
    sessions.add(session);
    session.on("error", () => {});
  });
  await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

const request = {
  path: "/echo",
  headers: { "content-type": "application/grpc", te: "trailers" },
  body: Buffer.from([0, 0, 0, 0, 0]),
};
const attackFor = async (origin: string, attack: HostileAttack, ms: number) => {
  const client = startHostileClient({ origin, attack, request, streams: 10 });
  await new Promise((resolve) => setTimeout(resolve, ms));
  return client.stop();
};

describe("hostile client", () => {
  it("rapid-reset opens real streams and cancels them, on a new connection after each GOAWAY", async () => {
    let streams = 0;
    let cancelled = 0;
    const origin = await startServer((stream) => {
      streams++;
      stream.on("aborted", () => cancelled++);
    });
    const stats = await attackFor(origin, "rapid-reset", 1000);
    expect(stats.sent).toBeGreaterThan(100);
    expect(streams).toBeGreaterThan(0);
    expect(cancelled).toBeGreaterThan(0);
    // node:http2 answers a rapid reset with GOAWAY; the attack goes on on a new connection.
    expect(stats.goaways).toBeGreaterThan(0);
    expect(stats.connections).toBeGreaterThan(1);
  });

  it("zero-window opens its streams with a request body", async () => {
    const paths: string[] = [];
    const origin = await startServer((_stream, headers) => paths.push(String(headers[":path"])));
    const stats = await attackFor(origin, "zero-window", 500);
    expect(stats.sent).toBe(10);
    expect(paths).toEqual(Array.from({ length: 10 }, () => "/echo"));
  });

  it("connects again when the server closes the connection on a PING flood, and stop() ends it", async () => {
    const origin = await startServer();
    const started = Date.now();
    const stats = await attackFor(origin, "ping-flood", 3000);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(stats.closedByServer).toBeGreaterThan(0);
    expect(stats.connections).toBeGreaterThan(1);
  });

  it("attacks from its own loopback address when given one", async () => {
    const peers: string[] = [];
    const origin = await startServer();
    server?.on("connection", (socket: { remoteAddress?: string }) => peers.push(socket.remoteAddress ?? ""));
    const client = startHostileClient({ origin, attack: "zero-window", request, streams: 1, localAddress: "127.0.0.2" });
    await new Promise((resolve) => setTimeout(resolve, 300));
    await client.stop();
    expect(peers[0]).toBe("127.0.0.2");
  });

  it("keeps trying while nothing listens, without throwing", async () => {
    const origin = await startServer();
    const closed = server;
    server = undefined;
    await new Promise((resolve) => closed?.close(resolve));
    const stats = await attackFor(origin, "settings-flood", 500);
    expect(stats.connections).toBeGreaterThan(1);
    expect(stats.sent).toBe(0);
    expect(stats.errors.at(-1)).toContain("ECONNREFUSED");
  });
});
