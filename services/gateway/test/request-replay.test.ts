import { randomBytes } from "node:crypto";
import * as net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { connectH2 } from "../src/h2/session.js";
import { readIntoShared } from "../src/h2/shared-read-buffer.js";
import { createRequestReplay } from "../src/request-replay.js";
import { cleanups, closeAll, engineServer, sleep, until } from "./h2/test-peers.js";

afterEach(closeAll);

describe("the request replay", { timeout: 10_000 }, () => {
  it("sends a retry the request bytes lent by reads as they were, after later reads overwrote the read buffer", async () => {
    // The retry goes to an engine server that echoes the request.
    const upstream = await engineServer();
    const session = connectH2({ url: `http://127.0.0.1:${upstream.port}` });
    session.on("error", () => {});
    cleanups.push(() => session.destroy());
    const replay = createRequestReplay(() => session.request({ ":method": "POST", ":path": "/again" }));

    // The caller's bytes come as the gateway reads them: views of the shared read buffer.
    const parts = [randomBytes(1_000), randomBytes(1_000)];
    let read = 0;
    const server = net.createServer((socket) => {
      readIntoShared(socket, (bytes) => {
        if (read < 2_000) replay.sent(bytes);
        read += bytes.length;
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => server.close());
    const caller = net.connect((server.address() as net.AddressInfo).port, "127.0.0.1");
    caller.on("error", () => {});
    cleanups.push(() => caller.destroy());
    for (const part of parts) {
      caller.write(part);
      await sleep(15);
    }
    // A later read overwrites the buffer.
    caller.write(randomBytes(4_000));
    await until(() => read === 6_000);
    replay.ended();

    const echoed: Buffer[] = [];
    let ended = false;
    const next = replay.retry((stream) => {
      stream.on("data", (chunk: Buffer) => echoed.push(chunk));
      stream.on("end", () => {
        ended = true;
      });
    });
    expect(next).toBeDefined();
    await until(() => ended);
    expect(Buffer.concat(echoed).equals(Buffer.concat(parts))).toBe(true);
  });
});
