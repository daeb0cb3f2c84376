// Run by scavenge-after-copies.test.ts in a node of its own, with the gateway's node flags: uploads
// 48 MiB in 64 KiB requests to the engine, whose handler reads and drops every chunk, and prints the
// most array-buffer memory the process held meanwhile (JSON on stdout).
import * as http2 from "node:http2";
import type { H2Stream } from "../../src/h2/index.js";
import { closeAll, engineServer, MiB } from "./test-peers.js";

let peak = 0;
let received = 0;
const server = await engineServer({}, (stream: H2Stream) => {
  stream.on("data", (chunk: Buffer) => {
    received += chunk.length;
    peak = Math.max(peak, process.memoryUsage().arrayBuffers);
  });
  stream.on("end", () => stream.respond({ ":status": 200 }, { endStream: true }));
});
const client = http2.connect(`http://127.0.0.1:${server.port}`);
const body = Buffer.alloc(64 * 1024, 0x61);
const upload = () =>
  new Promise<void>((resolve, reject) => {
    const req = client.request({ ":method": "POST", ":path": "/upload" });
    req.on("error", reject);
    req.on("close", () => resolve());
    req.resume();
    req.end(body);
  });
const before = process.memoryUsage().arrayBuffers;
for (let sent = 0; sent < 48 * MiB; sent += 8 * body.length) await Promise.all(Array.from({ length: 8 }, upload));
client.close();
closeAll();
process.stdout.write(JSON.stringify({ received, held: peak - before, gcExposed: typeof globalThis.gc === "function" }));
