// Test helper (not a test): a raw HTTP/2 client that sends requests and then stops reading.
import * as net from "node:net";
import { CLIENT_PREFACE, createHpackEncoder, FrameFlag, FrameType, frame, SettingId, settingsFrame } from "../src/h2/index.js";

export interface StalledRequest {
  /** Request headers, pseudo-headers first. */
  headers: [string, string][];
  /** A request body, sent whole with END_STREAM; none ends the stream with the headers. */
  body?: Buffer;
}

/**
 * Opens one HTTP/2 connection to `port` with the largest flow-control windows (so nothing but TCP
 * stops the server from sending), sends `requests` on streams 1, 3, 5, … and then stops reading
 * the socket: the worst case of a client that does not read its responses.
 */
export function stalledH2Client(port: number, requests: StalledRequest[]): Promise<{ close(): void }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.on("error", reject);
    socket.on("connect", () => {
      const increment = Buffer.alloc(4);
      increment.writeUInt32BE(2 ** 31 - 1 - 65_535);
      socket.write(
        Buffer.concat([
          CLIENT_PREFACE,
          settingsFrame([[SettingId.initialWindowSize, 2 ** 31 - 1]]),
          frame(FrameType.windowUpdate, 0, 0, increment),
        ]),
      );
    });
    // The server's SETTINGS arrive first: acknowledge them, send the requests, then read no more.
    socket.once("data", () => {
      const hpack = createHpackEncoder();
      const out: Buffer[] = [settingsFrame([], true)];
      requests.forEach((request, i) => {
        const id = 2 * i + 1;
        const block = hpack.encode(request.headers);
        const endStream = request.body === undefined ? FrameFlag.endStream : 0;
        out.push(frame(FrameType.headers, FrameFlag.endHeaders | endStream, id, block));
        if (request.body !== undefined) out.push(frame(FrameType.data, FrameFlag.endStream, id, request.body));
      });
      socket.write(Buffer.concat(out));
      socket.pause();
      resolve({ close: () => socket.destroy() });
    });
  });
}

/** Growth of the process's Buffer memory (`arrayBuffers`) while `run` goes on, in bytes, after `settleMs`. */
export async function bufferGrowth(run: () => Promise<unknown>, settleMs: number): Promise<number> {
  const before = process.memoryUsage().arrayBuffers;
  await run();
  await new Promise((r) => setTimeout(r, settleMs));
  return process.memoryUsage().arrayBuffers - before;
}
