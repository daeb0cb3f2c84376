import { spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { accessLogOn } from "../src/access-log.js";
import { createAccessLogFile } from "../src/access-log-file.js";
import type { CallRecord } from "../src/pipeline/call.js";
import { protocols } from "../src/rpc-protocol.js";

const dir = mkdtempSync(join(tmpdir(), "access-log-"));
const fds: number[] = [];
afterAll(() => {
  for (const fd of fds) closeSync(fd);
});

const call = (fields: Partial<CallRecord> = {}): CallRecord => ({
  route: undefined,
  path: "/portico.greeter.v1.GreeterService/Echo",
  protocol: protocols.grpcProto,
  code: "ok",
  startedAt: 0,
  userId: "0f8e7d6c-5b4a-3928-1706-f5e4d3c2b1a0",
  requestId: "3f1c2a4e-8b6d-4e2f-9a1b-0c3d5e7f9a1b",
  clientIp: "127.0.0.1",
  rateLimited: false,
  span: undefined,
  ...fields,
});

/** A file the log writes to and a reader of its lines. */
const output = (name: string) => {
  const path = join(dir, name);
  const fd = openSync(path, "w");
  fds.push(fd);
  return {
    fd,
    lines: () =>
      readFileSync(path, "utf8")
        .split("\n")
        .filter((l) => l !== ""),
  };
};

const untilLines = async (read: () => string[], count: number) => {
  for (let i = 0; i < 100 && read().length < count; i++) await new Promise((r) => setTimeout(r, 20));
  return read();
};

describe("the gateway's access log file", () => {
  it("writes the line pino writes for the service logger, whatever the caller sent", () => {
    // What the pino access logger wrote before (main.ts), as the reference.
    let reference = "";
    const pinoLog = accessLogOn(
      pino(
        {
          level: "info",
          base: { service: "gateway", log: "access" },
          timestamp: pino.stdTimeFunctions.isoTime,
          formatters: { level: (label) => ({ level: label }) },
        },
        { write: (line: string) => (reference = line) },
      ),
    );
    const out = output("same.log");
    const log = createAccessLogFile({ level: "info", fd: out.fd });
    const text = fc.string({ unit: "grapheme", maxLength: 60 });
    const withoutTime = (line: string) => line.replace(/"time":"[^"]+"/, '"time":"…"');
    let written = 0;
    fc.assert(
      fc.property(
        fc.record({
          requestId: text,
          path: text,
          userId: fc.oneof(fc.constant(""), text),
          clientIp: fc.oneof(fc.ipV4(), fc.ipV6()),
          code: fc.constantFrom("ok", "unauthenticated", "resource_exhausted"),
          protocol: fc.constantFrom(protocols.grpcProto, protocols.connectUnaryJson, protocols.grpcWebProto),
          traceId: fc.option(fc.stringMatching(/^[0-9a-f]{32}$/), { nil: undefined }),
        }),
        fc.double({ min: 0, max: 60_000, noNaN: true }),
        (fields, ms) => {
          const record = call({
            ...fields,
            span: fields.traceId === undefined ? undefined : ({ traceId: fields.traceId } as CallRecord["span"]),
          });
          pinoLog(record, ms);
          log.write(record, ms);
          log.flush();
          written++;
          const lines = out.lines();
          expect(lines).toHaveLength(written);
          expect(withoutTime(`${lines.at(-1)}\n`)).toBe(withoutTime(reference));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("writes a quiet gateway's lines within the flush interval, not once 4 KiB have gathered", async () => {
    const out = output("quiet.log");
    const log = createAccessLogFile({ level: "info", fd: out.fd, flushMs: 50 });
    log.write(call({ code: "unauthenticated", userId: "" }), 1.234);
    log.write(call(), 0.5);
    expect(out.lines()).toEqual([]);
    const lines = await untilLines(out.lines, 2);
    expect(lines.map((l) => JSON.parse(l))).toMatchObject([
      { level: "info", service: "gateway", log: "access", code: "unauthenticated", ms: 1.23, ip: "127.0.0.1" },
      { code: "ok", userId: "0f8e7d6c-5b4a-3928-1706-f5e4d3c2b1a0", ms: 0.5 },
    ]);
    expect(JSON.parse(lines[0]!)).not.toHaveProperty("userId");
  });

  it("writes nothing at the warn level and refuses a level it does not know", async () => {
    const out = output("warn.log");
    const log = createAccessLogFile({ level: "warn", fd: out.fd, flushMs: 10 });
    log.write(call(), 1);
    log.flush();
    await new Promise((r) => setTimeout(r, 50));
    expect(out.lines()).toEqual([]);
    expect(() => createAccessLogFile({ level: "loud" })).toThrow(/unknown log level "loud"/);
  });

  it("holds at most maxPending while the output is blocked, then says how many lines it dropped", async () => {
    // A pipe whose reader starts reading only after a second: the writes meet a full pipe first.
    const reader = spawn("sh", ["-c", "sleep 1; cat"], { stdio: ["pipe", "pipe", "inherit"] });
    const chunks: Buffer[] = [];
    reader.stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
    const closed = new Promise((r) => reader.once("close", r));
    const fd = (reader.stdin as unknown as { _handle: { fd: number } })._handle.fd;
    const maxPending = 64 * 1024;
    const log = createAccessLogFile({ level: "info", fd, minLength: 1024, maxPending });
    const sent = 20_000; // ~4 MB of lines: far more than the pipe (64 KiB) and maxPending hold
    for (let i = 0; i < sent; i++) log.write(call({ requestId: `r${i}` }), 1);
    // Let the reader drain everything, then close the pipe.
    await new Promise((r) => setTimeout(r, 2500));
    log.flush();
    reader.stdin.end();
    await closed;
    const lines = Buffer.concat(chunks)
      .toString("utf8")
      .split("\n")
      .filter((l) => l !== "");
    const calls = lines.filter((l) => l.includes('"requestId"'));
    const notice = lines.find((l) => l.includes("lines dropped"));
    expect(notice).toBeDefined();
    const dropped = Number(/access log: (\d+) lines dropped/.exec(notice!)![1]);
    // Every line is accounted for: written whole or counted as dropped; the first ones came out in order.
    expect(calls.length + dropped).toBe(sent);
    expect(dropped).toBeGreaterThan(sent / 2);
    expect(JSON.parse(calls[0]!).requestId).toBe("r0");
    for (const line of calls) JSON.parse(line);
  });
});
