import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Gateway } from "../src/start-gateway.js";
import { rawRequest, startLoneGateway } from "./test-platform.js";
import { bufferGrowth, stalledH2Client } from "./test-stalled-client.js";

const fileBytes = 16 * 1024 * 1024;
let root = "";
let gateway: Gateway;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "portico-static-"));
  const big = Buffer.alloc(fileBytes);
  for (let i = 0; i < big.length; i += 4096) big[i] = i % 251;
  writeFileSync(join(root, "big.bin"), big);
  writeFileSync(join(root, "index.html"), "<!doctype html><title>app</title>");
  gateway = await startLoneGateway({ webRoot: root });
});
afterAll(async () => {
  await gateway?.close();
  rmSync(root, { recursive: true, force: true });
});

describe("static files", () => {
  it("streams a file whole to a client that reads, with its length", async () => {
    const res = await rawRequest(gateway.url, { method: "GET", path: "/big.bin" });
    expect(res.status).toBe(200);
    expect(Number(res.headers["content-length"])).toBe(fileBytes);
    expect(res.body.length).toBe(fileBytes);
    expect(res.body[4096 * 7]).toBe((4096 * 7) % 251);
    const page = await rawRequest(gateway.url, { method: "GET", path: "/some/client/route" });
    expect(page.body.toString()).toContain("<title>app</title>");
  });

  it("holds a bounded amount of memory for clients that do not read a large file", async () => {
    const clients: { close(): void }[] = [];
    const streams = 8;
    const growth = await bufferGrowth(async () => {
      for (let c = 0; c < 2; c++) {
        const requests = Array.from({ length: streams / 2 }, () => ({
          headers: [
            [":method", "GET"],
            [":scheme", "http"],
            [":authority", "gateway"],
            [":path", "/big.bin"],
          ] as [string, string][],
        }));
        clients.push(await stalledH2Client(gateway.port, requests));
      }
    }, 1000);
    for (const client of clients) client.close();
    // Read whole, the file would be held once per stream (8 × 16 MiB); streamed, a few chunks each.
    expect(growth).toBeLessThan(24 * 1024 * 1024);
  });
});
