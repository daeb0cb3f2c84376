import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { afterEach, describe, expect, it } from "vitest";
import { FrameFlag, FrameType, frame } from "../../src/h2/frame.js";
import { createHpackEncoder } from "../../src/h2/hpack.js";
import type { H2Session } from "../../src/h2/index.js";
import { isShared, readIntoShared, sharedReadBuffer } from "../../src/h2/shared-read-buffer.js";
import { createTestCertificate } from "../test-certificate.js";
import { cleanups, closeAll, engineServer, nodeCall, nodeClient, rawPeer, requestFields, sleep, until } from "./test-peers.js";

afterEach(closeAll);

/** Writes `pieces` one at a time, each in a read of its own at the server (a pause between them). */
async function writeApart(socket: net.Socket, pieces: Buffer[]): Promise<void> {
  for (const piece of pieces) {
    socket.write(piece);
    await sleep(15);
  }
}

describe("the shared read buffer", { timeout: 10_000 }, () => {
  it("is what an accepted plain TCP socket reads into; a TLS socket keeps its 'data' events", async () => {
    const accepted: boolean[] = [];
    const server = net.createServer((socket) => {
      accepted.push(readIntoShared(socket, () => {}));
      // A second time changes nothing: the socket already reads into it.
      accepted.push(readIntoShared(socket, () => {}));
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => server.close());
    const client = net.connect((server.address() as net.AddressInfo).port, "127.0.0.1");
    client.on("error", () => {});
    await until(() => accepted.length === 2);
    expect(accepted).toEqual([true, false]);

    const { cert, key } = await createTestCertificate(mkdtempSync(join(tmpdir(), "shared-read-buffer-")));
    const tlsAccepted: boolean[] = [];
    const secure = tls.createServer({ cert, key }, (socket) => {
      tlsAccepted.push(readIntoShared(socket, () => {}));
      socket.destroy();
    });
    await new Promise<void>((resolve) => secure.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => secure.close());
    const tlsClient = tls.connect({
      port: (secure.address() as net.AddressInfo).port,
      host: "127.0.0.1",
      rejectUnauthorized: false,
    });
    tlsClient.on("error", () => {});
    await until(() => tlsAccepted.length === 1);
    expect(tlsAccepted).toEqual([false]);
  });

  it("hands a stream DATA of its own: what a reader keeps stays whole while later reads overwrite the buffer", async () => {
    const kept = new Map<number, Buffer[]>();
    const ended = new Set<number>();
    const server = await engineServer({}, (stream) => {
      const chunks: Buffer[] = [];
      kept.set(stream.id, chunks);
      // Kept as handed over, not copied.
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => {
        ended.add(stream.id);
        stream.respond({ ":status": 200 }, { endStream: true });
      });
    });
    const peer = await rawPeer(server.port);
    const encoder = createHpackEncoder();
    const bodies = [randomBytes(20_000), randomBytes(20_000), randomBytes(5_000)];
    const pieces: Buffer[] = [];
    bodies.forEach((body, i) => {
      const id = 2 * i + 1;
      pieces.push(
        Buffer.concat([
          frame(FrameType.headers, FrameFlag.endHeaders, id, encoder.encode(requestFields("POST", "/a.B/C"))),
          frame(FrameType.data, 0, id, body.subarray(0, 16_384)),
        ]),
        frame(FrameType.data, FrameFlag.endStream, id, body.subarray(16_384)),
      );
    });
    await writeApart(peer.socket, pieces);
    await until(() => ended.size === 3);
    bodies.forEach((body, i) => {
      const chunks = kept.get(2 * i + 1) as Buffer[];
      expect(chunks.some(isShared)).toBe(false);
      expect(Buffer.concat(chunks).equals(body)).toBe(true);
    });
  });

  it("keeps a frame cut by the end of a read and a header block in CONTINUATION frames across reads", async () => {
    const seen: string[] = [];
    const server = await engineServer({}, (stream, headers) => {
      seen.push(String(headers["x-long"]));
      stream.respond({ ":status": 200 }, { endStream: true });
    });
    const peer = await rawPeer(server.port);
    const encoder = createHpackEncoder();
    const long = randomBytes(3_000).toString("hex");
    // A HEADERS frame cut in two reads.
    const first = frame(
      FrameType.headers,
      FrameFlag.endHeaders | FrameFlag.endStream,
      1,
      encoder.encode(requestFields("GET", "/a.B/C", [["x-long", long]])),
    );
    // A header block in three frames, each in a read of its own.
    const block = encoder.encode(requestFields("GET", "/a.B/C", [["x-long", long.toUpperCase()]]));
    const third = Math.floor(block.length / 3);
    await writeApart(peer.socket, [
      first.subarray(0, 1_000),
      first.subarray(1_000),
      frame(FrameType.headers, FrameFlag.endStream, 3, block.subarray(0, third)),
      frame(FrameType.continuation, 0, 3, block.subarray(third, 2 * third)),
      frame(FrameType.continuation, FrameFlag.endHeaders, 3, block.subarray(2 * third)),
    ]);
    await until(() => seen.length === 2);
    expect(seen).toEqual([long, long.toUpperCase()]);
    expect(peer.frames.filter((f) => f.type === FrameType.goaway)).toEqual([]);
  });

  it("proxies bodies byte for byte through engine sessions on both sides of a hop", async () => {
    const server = await engineServer();
    const client = nodeClient(server.port);
    const bodies = Array.from({ length: 8 }, (_, i) => randomBytes(70_000 + i * 1_000));
    const replies = await Promise.all(bodies.map((body) => nodeCall(client, { ":path": "/echo", ":method": "POST" }, body)));
    expect(replies.map((reply, i) => reply.body.equals(bodies[i] as Buffer))).toEqual(bodies.map(() => true));
    expect(sharedReadBuffer.length).toBeGreaterThanOrEqual(128 * 1024);
  });
});

describe("flush", { timeout: 10_000 }, () => {
  it("counts a session blocked only while its socket holds bytes the kernel did not take", async () => {
    const states: Array<{ blocked: boolean; unwritten: number }> = [];
    const server = await engineServer({}, (stream) => {
      stream.respond({ ":status": 200 });
      stream.on("data", () => {});
      stream.on("end", () => {
        const session = server.sessions[0] as H2Session;
        // Over the socket's 16 KiB high-water mark, well under what loopback takes at once.
        stream.end(randomBytes(40_000));
        session.flush();
        states.push({ blocked: session.blocked, unwritten: session.socket.writableLength });
      });
    });
    const client = nodeClient(server.port);
    const reply = await nodeCall(client, { ":path": "/big", ":method": "POST" }, Buffer.from("hi"));
    expect(reply.body.length).toBe(40_000);
    expect(states).toHaveLength(1);
    expect(states[0]?.blocked).toBe(states[0]?.unwritten !== 0);
  });
});
