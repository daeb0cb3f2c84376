import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { routeStreams } from "../src/stream-handlers.js";

describe("routeStreams", () => {
  const compatPaths: string[] = [];
  let server: http2.Http2Server;
  let url = "";

  beforeAll(async () => {
    server = http2.createServer((req, res) => {
      compatPaths.push(req.url);
      res.writeHead(200, { "x-by": "compat" });
      res.end("compat");
    });
    routeStreams(server, {
      "/raw": (stream, headers) => {
        if (headers["x-take"] !== "yes") return false;
        stream.respond({ ":status": 200, "x-by": "raw" });
        stream.end("raw");
        return true;
      },
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  async function get(path: string, take: boolean): Promise<{ by: unknown; body: string }> {
    const session = http2.connect(url);
    const req = session.request({ ":path": path, ...(take ? { "x-take": "yes" } : {}) });
    let by: unknown;
    let body = "";
    req.on("response", (h) => (by = h["x-by"]));
    req.setEncoding("utf8");
    req.on("data", (c: string) => (body += c));
    await new Promise((resolve) => req.on("close", resolve));
    session.close();
    return { by, body };
  }

  it("gives the handler's streams to it with no compatibility objects, and passes on what it refuses", async () => {
    expect(await get("/raw", true)).toEqual({ by: "raw", body: "raw" });
    expect(await get("/raw?x=1", true)).toEqual({ by: "raw", body: "raw" });
    expect(compatPaths).toEqual([]);
    expect(await get("/raw", false)).toEqual({ by: "compat", body: "compat" });
    expect(await get("/other", true)).toEqual({ by: "compat", body: "compat" });
    expect(await get("/raw/more", true)).toEqual({ by: "compat", body: "compat" });
    expect(compatPaths).toEqual(["/raw", "/other", "/raw/more"]);
  });

  it("refuses a server without a request handler to pass streams on to", () => {
    expect(() => routeStreams(http2.createServer(), {})).toThrow(/no request handler/);
  });
});
