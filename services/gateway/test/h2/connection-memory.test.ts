import { afterAll, describe, expect, it } from "vitest";
import { FrameType } from "../../src/h2/frame.js";
import { createHpackEncoder } from "../../src/h2/hpack.js";
import { closeAll, engineServer, type RawPeer, rawPeer, received, requestFrame, until } from "./test-peers.js";
import { usedBytes } from "./used-bytes.js";

afterAll(closeAll);

/** Opens `n` connections that each send one request, waits for every answer, and returns the bytes held per connection. */
async function heldPerConnection(port: number, n: number, live: () => number): Promise<{ bytes: number; peers: RawPeer[] }> {
  const before = usedBytes();
  const peers: RawPeer[] = [];
  for (let i = 0; i < n; i++) {
    const peer = await rawPeer(port);
    peer.socket.write(requestFrame(createHpackEncoder(), 1, "/x", true));
    peers.push(peer);
  }
  await until(() => live() === n && peers.every((peer) => received(peer, FrameType.headers, 1).length > 0), 10_000);
  return { bytes: (usedBytes() - before) / n, peers };
}

describe("an idle connection's memory (W5: 1,000 connections at a low rate)", () => {
  it("costs under 8,600 bytes once it has answered a call, both of its sockets in this process included", async () => {
    const server = await engineServer();
    const live = () => server.sessions.filter((session) => !session.destroyed).length;
    // A first round warms up what is made once per process (compiled code, pools), then goes away.
    const warmUp = await heldPerConnection(server.port, 200, live);
    for (const peer of warmUp.peers) peer.socket.destroy();
    await until(() => live() === 0, 5_000);
    server.sessions.length = 0;

    // Measured twice (1,000 connections each, all held): what else the process allocates meanwhile (a
    // busy CI machine's timing) only ever adds to one measurement, while a cost per connection shows in
    // both; one CI run saw 8,800 bytes once in many runs.
    const first = await heldPerConnection(server.port, 1000, live);
    const second = await heldPerConnection(server.port, 1000, () => live() - 1000);
    const bytes = Math.min(first.bytes, second.bytes);
    // The client's raw socket and the server's socket, H2Session, HPACK coder pair, token buckets and
    // ClosedStreams: ~8,330 bytes. The session's starved, stalled and lingering collections are made
    // only when a stream needs one; made for every connection, they cost ~550 bytes more (~8,880).
    expect(bytes).toBeLessThan(8_600);
    expect([...first.peers, ...second.peers].every((peer) => !peer.socket.destroyed)).toBe(true);
  });
});
