import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { open } from "node:fs/promises";
import * as http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Gateway } from "../src/start-gateway.js";
import { freePort, startLoneGateway } from "./test-platform.js";

/**
 * Blocks every thread of libuv's pool (4) on opening a FIFO nobody writes to: until `release()`,
 * a DNS lookup (the admin host is a name) waits, and start-up with it.
 */
function blockThreadPool(): { release(): void } {
  const dir = mkdtempSync(join(tmpdir(), "portico-start-"));
  const fifo = join(dir, "fifo");
  execFileSync("mkfifo", [fifo]);
  const opened = Array.from({ length: 4 }, () => open(fifo, "r").then((h) => h.close()));
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      // Opening the write end lets every pending open of the read end complete.
      closeSync(openSync(fifo, "w"));
      void Promise.all(opened).then(() => rmSync(dir, { recursive: true, force: true }));
    },
  };
}

const gateways: Gateway[] = [];
afterEach(async () => {
  for (const g of gateways.splice(0)) await g.close();
});

describe("start-up", () => {
  it("serves an HTTP/2 connection accepted while the admin server is still starting", async () => {
    const port = await freePort();
    // The admin host is a name: its lookup waits behind the blocked thread pool, so the public
    // port listens and the admin server cannot start until the pool is released.
    const pool = blockThreadPool();
    // Should start-up need the pool before the public port listens, the test fails rather than hangs.
    const safety = setTimeout(() => pool.release(), 5000);
    let started = false;
    const starting = startLoneGateway({ port, adminHost: "localhost" });
    void starting.then(() => {
      started = true;
    });
    // Connect as soon as the port listens, and complete an HTTP/2 exchange before start-up ends.
    let status = 0;
    let answeredEarly = false;
    while (status === 0) {
      const answer = await new Promise<number>((resolve) => {
        const session = http2.connect(`http://127.0.0.1:${port}`);
        session.on("error", () => resolve(0));
        session.on("connect", () => {
          const stream = session.request({
            ":method": "POST",
            ":path": "/no.such.v1.Service/Method",
            "content-type": "application/proto",
          });
          stream.on("response", (h) => {
            answeredEarly = !started;
            resolve(Number(h[":status"]));
          });
          stream.on("error", () => resolve(0));
          stream.on("close", () => session.close());
          stream.end();
        });
      });
      status = answer;
      if (status === 0) await new Promise((r) => setTimeout(r, 2));
    }
    pool.release();
    clearTimeout(safety);
    const gateway = await starting;
    gateways.push(gateway);
    expect({ answeredEarly, status }).toEqual({ answeredEarly: true, status: 501 });
    expect(gateway.port).toBe(port);
  });
});
