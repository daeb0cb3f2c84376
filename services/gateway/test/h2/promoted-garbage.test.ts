import { getHeapSpaceStatistics } from "node:v8";
import { afterAll, describe, expect, it } from "vitest";
import { FrameType } from "../../src/h2/frame.js";
import { createHpackEncoder, type HpackEncoder } from "../../src/h2/hpack.js";
import { closeAll, engineServer, type RawPeer, rawPeer, received, requestFrame, until } from "./test-peers.js";
import { gc } from "./used-bytes.js";

afterAll(closeAll);

const oldSpaceUsed = () => getHeapSpaceStatistics().find((space) => space.space_name === "old_space")?.space_used_size ?? 0;

describe("a call's garbage on a connection that calls now and then (W5: 1,000 connections, a call every 2 s each)", () => {
  it("dies young: the frames a call queued are not kept past their write (~9 MB of W5's peak)", async () => {
    const server = await engineServer();
    const n = 1000;
    const peers: { peer: RawPeer; encoder: HpackEncoder }[] = [];
    for (let i = 0; i < n; i++) {
      const peer = await rawPeer(server.port);
      const encoder = createHpackEncoder();
      peer.socket.write(requestFrame(encoder, 1, "/x", true));
      peers.push({ peer, encoder });
    }
    await until(() => peers.every(({ peer }) => received(peer, FrameType.headers, 1).length > 0), 10_000);
    // Five rounds of one more call on every connection, each after a full collection has moved every
    // session and what it holds between calls to the old generation (as the scavenges of 2 s at W5's
    // rate do). Two scavenges then promote what survived both; a full collection tells that garbage
    // from what lives. The median round, so that a collection V8 starts by itself does not decide.
    const rounds: number[] = [];
    for (const id of [3, 5, 7, 9, 11]) {
      gc();
      for (const { peer, encoder } of peers) peer.socket.write(requestFrame(encoder, id, "/x", true));
      await until(() => peers.every(({ peer }) => received(peer, FrameType.headers, id).length > 0), 10_000);
      gc({ type: "minor" });
      gc({ type: "minor" });
      const afterScavenges = oldSpaceUsed();
      gc();
      rounds.push((afterScavenges - oldSpaceUsed()) / n);
    }
    const promotedGarbage = [...rounds].sort((a, b) => a - b)[2] as number;
    // Emptied after its write, the queue keeps nothing: 120–220 bytes a call (the raw peers' own reads
    // included). Dropped full, each call's queue and frames were promoted: 500–830 bytes a call.
    expect(promotedGarbage, `rounds: ${rounds.map(Math.round).join(", ")} bytes a call`).toBeLessThan(350);
  });
});
