import { execFile } from "node:child_process";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { grpcStatusTrailers, rateLimitedError } from "../src/error-response.js";

describe("grpcStatusTrailers", () => {
  it("answers OK with grpc-status 0 alone, and an error with its code, message and details", () => {
    expect(grpcStatusTrailers(undefined)).toEqual({ "grpc-status": "0" });
    const error = rateLimitedError(1500, "1/s per user");
    const trailers = grpcStatusTrailers(error);
    expect(trailers["grpc-status"]).toBe(String(Code.ResourceExhausted));
    expect(trailers["grpc-message"]).toBe(encodeURIComponent(error.rawMessage));
    expect(trailers["retry-after"]).toBe("2");
    expect(trailers["grpc-status-details-bin"]).toBeTruthy();
    expect(grpcStatusTrailers(new ConnectError("gone away", Code.Unavailable))).toEqual({
      "grpc-message": "gone%20away",
      "grpc-status": String(Code.Unavailable),
    });
  });

  it("does not make node load undici for an OK status (a translated call that succeeds)", async () => {
    // In a process of its own: vitest's worker may have loaded undici already.
    const built = new URL("../dist/error-response.js", import.meta.url).href;
    const script = `const { grpcStatusTrailers } = await import(${JSON.stringify(built)});
grpcStatusTrailers(undefined);
console.log(JSON.stringify(process.moduleLoadList.filter((m) => m.includes("undici"))));`;
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ["--input-type=module", "-e", script], { timeout: 10_000 }, (error, stdout, stderr) =>
        error ? reject(new Error(`${error.message}: ${stderr}`)) : resolve(stdout),
      ),
    );
    expect(JSON.parse(out)).toEqual([]);
  });
});

describe("rateLimitedError", () => {
  // Found by error-response.fuzz.test.ts (seed 20261204): 5e-324 ms threw "invalid int32" while
  // encoding the RetryInfo detail, so a fractional wait turned a rate-limit answer into an internal error.
  it("announces a fractional wait as the next whole millisecond", () => {
    for (const [waitMs, whole] of [
      [5e-324, 1],
      [1500.5, 1501],
      [999.0001, 1000],
    ] as const) {
      const error = rateLimitedError(waitMs, "1/s per user");
      const expected = rateLimitedError(whole, "1/s per user");
      expect(error.code).toBe(Code.ResourceExhausted);
      expect(error.metadata.get("retry-after")).toBe(expected.metadata.get("retry-after"));
      expect(error.details).toEqual(expected.details);
    }
  });
});
