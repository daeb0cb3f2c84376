import { write as fsWrite, writeSync } from "node:fs";
import { Code } from "@connectrpc/connect";
import type { AccessLog } from "./access-log.js";
import { connectError } from "./connect-error.js";

export interface AccessLogFileOptions {
  /** The service's log level: the access log's lines are at `info`, so `warn` and above write none. */
  level: string;
  /** File descriptor the lines go to (default 1, stdout). */
  fd?: number;
  /** Lines are written once this many characters wait (default 4096)… */
  minLength?: number;
  /** …or this long after the first of them (default 100 ms), so a quiet gateway's lines still show. */
  flushMs?: number;
  /** Characters that may wait while the output does not take them (default 4 MiB); lines beyond are dropped and counted. */
  maxPending?: number;
}

export interface AccessLogFile {
  readonly write: AccessLog;
  /** Writes what waits, synchronously (on shutdown and process exit). */
  flush(): void;
}

const levels: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };

export const accessLogDefaults = { fd: 1, minLength: 4096, flushMs: 100, maxPending: 4 * 1024 * 1024 } as const;

/**
 * The gateway's access log: one JSON line per call, the shape pino writes for the service logger
 * (`level`, ISO `time`, `service`, `log: "access"`, then the call's fields), built by hand and
 * written in batches with asynchronous writes. It is on every call's path: pino's generic
 * serializer and sonic-boom's per-line bookkeeping cost about 2.5 µs a line more (bench/README.md).
 * A stalled output (a full pipe) holds at most `maxPending` characters; what does not fit is dropped,
 * and the count is written as a line of its own once the output takes lines again.
 */
export function createAccessLogFile(options: AccessLogFileOptions): AccessLogFile {
  const level = levels[options.level];
  if (level === undefined) throw connectError(`unknown log level "${options.level}"`, Code.InvalidArgument);
  const { fd, minLength, flushMs, maxPending } = { ...accessLogDefaults, ...options };
  const enabled = level <= levels.info!;

  let pending = "";
  let writing = false;
  let timer: NodeJS.Timeout | undefined;
  let dropped = 0;
  // The ISO time of the last millisecond a line was written in (a call ends in the same one often).
  let lastMs = 0;
  let lastTime = "";

  const head = (levelLabel: string): string => {
    const now = Date.now();
    if (now !== lastMs) {
      lastMs = now;
      lastTime = new Date(now).toISOString();
    }
    return `{"level":"${levelLabel}","time":"${lastTime}","service":"gateway","log":"access"`;
  };

  const schedule = () => {
    if (pending.length >= minLength) drain();
    else if (timer === undefined && pending !== "") timer = setTimeout(drain, flushMs).unref();
  };

  const writeBytes = (bytes: Buffer) => {
    writing = true;
    fsWrite(fd, bytes, 0, bytes.length, null, (error, written) => {
      if (error?.code === "EAGAIN") {
        // A non-blocking pipe that is full: try again shortly, the same bytes.
        setTimeout(writeBytes, 10, bytes).unref();
        return;
      }
      // Another error (the output closed): those lines are lost, the gateway goes on.
      if (error === null && written < bytes.length) return writeBytes(bytes.subarray(written));
      writing = false;
      schedule();
    });
  };

  function drain() {
    clearTimeout(timer);
    timer = undefined;
    if (writing || pending === "") return;
    let text = pending;
    pending = "";
    if (dropped > 0) {
      text += `${head("warn")},"msg":"access log: ${dropped} lines dropped while the output was blocked"}\n`;
      dropped = 0;
    }
    writeBytes(Buffer.from(text, "utf8"));
  }

  return {
    write(call, ms) {
      if (!enabled) return;
      if (pending.length >= maxPending) {
        dropped++;
        return;
      }
      // protocol and code are the gateway's own names; what a caller or a token chose is escaped.
      let line = `${head("info")},"requestId":${JSON.stringify(call.requestId)},"method":${JSON.stringify(call.path)},"protocol":"${call.protocol.protocol}","code":"${call.code}","ms":${Math.round(ms * 100) / 100}`;
      if (call.userId) line += `,"userId":${JSON.stringify(call.userId)}`;
      line += `,"ip":${JSON.stringify(call.clientIp)}`;
      const traceId = call.span?.traceId;
      if (traceId !== undefined) line += `,"trace_id":"${traceId}"`;
      pending += `${line}}\n`;
      schedule();
    },
    flush() {
      clearTimeout(timer);
      timer = undefined;
      if (pending === "") return;
      // A batch already handed to an asynchronous write goes out on its own; this one may follow it.
      let bytes = Buffer.from(pending, "utf8");
      pending = "";
      try {
        while (bytes.length > 0) bytes = bytes.subarray(writeSync(fd, bytes));
      } catch {
        // Closed or full for good at shutdown: nothing more to do.
      }
    },
  };
}
