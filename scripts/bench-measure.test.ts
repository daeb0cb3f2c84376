// The benchmark must fail on gRPC errors that h2load cannot see: a gRPC error is HTTP 200 with
// grpc-status in the trailers. A real h2load drives a real HTTP/2 server that answers some calls
// with an error; the harness's checks must count every one. Needs h2load (nghttp2-client).
import { mkdtempSync, writeFileSync } from "node:fs";
import * as http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runH2load } from "./bench-h2load.js";
import { h2loadErrors, missingAnswers } from "./bench-measure.js";
import { probe } from "./bench-probe.js";

const answer = Buffer.from([0, 0, 0, 0, 4, 0x0a, 2, 0x68, 0x69]); // one gRPC message
const request = Buffer.from([0, 0, 0, 0, 0]);

let server: http2.Http2Server;
let origin: string;
const dir = mkdtempSync(join(tmpdir(), "bench-measure-test-"));
const bodyFile = join(dir, "request.bin");

beforeAll(async () => {
  writeFileSync(bodyFile, request);
  const calls = new Map<string, number>();
  server = http2.createServer();
  server.on("stream", (stream, headers) => {
    stream.resume();
    stream.on("end", () => {
      const path = headers[":path"] ?? "";
      const n = (calls.get(path) ?? 0) + 1;
      calls.set(path, n);
      // "/flaky" answers every fifth call with unavailable, trailers-only, as proxies do when an upstream is down.
      if (path === "/flaky" && n % 5 === 0) {
        stream.respond(
          { ":status": 200, "content-type": "application/grpc", "grpc-status": "14", "grpc-message": "down" },
          { endStream: true },
        );
        return;
      }
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.end(answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

const load = (path: string) =>
  runH2load({
    url: `${origin}${path}`,
    headers: { "content-type": "application/grpc", te: "trailers" },
    bodyFile,
    clients: 4,
    requests: 200,
    logFile: join(dir, `${path.slice(1)}.log`),
  });

describe("bench checks", () => {
  it("count gRPC errors that h2load reports as successes", async () => {
    const result = await load("/flaky");
    expect(result.requests.succeeded).toBe(200);
    expect(result.status["2xx"]).toBe(200);
    const problems: string[] = [];
    expect(h2loadErrors(result, problems)).toBe(0);
    expect(missingAnswers(result, answer.length, problems)).toBe(40);
    expect(problems.join("\n")).toContain("40 answered without the message");
  });

  it("count nothing when every call answered", async () => {
    const result = await load("/steady");
    const problems: string[] = [];
    expect(h2loadErrors(result, problems) + missingAnswers(result, answer.length, problems)).toBe(0);
    expect(problems).toEqual([]);
    expect(result.latencyMs.p50).toBeGreaterThan(0);
  });

  it("read grpc-status from the trailers of a single call", async () => {
    const outcomes = [];
    for (let i = 0; i < 5; i++) {
      outcomes.push(
        await probe({
          origin,
          path: "/flaky",
          protocol: "grpc",
          headers: { "content-type": "application/grpc", te: "trailers" },
          body: request,
        }),
      );
    }
    expect(outcomes.filter((o) => o.ok)).toHaveLength(4);
    const failed = outcomes.find((o) => !o.ok)!;
    expect(failed.httpStatus).toBe(200);
    expect(failed.problem).toBe("grpc-status 14 (down)");
  });
});
