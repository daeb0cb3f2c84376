// Single calls made with node:http2 beside h2load: they read what h2load cannot, the gRPC
// trailers (grpc-status) and the Connect body, and time the first message of a stream.
import * as http2 from "node:http2";
import { type Latency, latencyOf } from "./bench-h2load.js";

export interface CallSpec {
  /** `http://host:port` */
  origin: string;
  path: string;
  protocol: "connect" | "grpc";
  headers: Record<string, string>;
  body: Uint8Array;
}

export interface CallOutcome {
  ok: boolean;
  /** Why the call is not ok, in one line. */
  problem?: string;
  httpStatus: number;
  grpcStatus?: string;
  body: Buffer;
  /** gRPC messages received. */
  messages: number;
  /** Milliseconds from sending the request to the first complete message (gRPC) or the body (Connect). */
  firstMessageMs: number;
  totalMs: number;
}

export function connect(origin: string): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(origin);
    session.once("connect", () => {
      session.off("error", reject);
      session.on("error", () => {}); // reported per call
      resolve(session);
    });
    session.once("error", reject);
  });
}

const callTimeoutMs = 15_000;

/** One call on `session`; never rejects, a failure (or no answer within 15 s) is reported in the outcome. */
export function callOnce(session: http2.ClientHttp2Session, spec: CallSpec, expectedBody?: Buffer): Promise<CallOutcome> {
  return new Promise((resolve) => {
    const started = performance.now();
    let firstMessageMs = Number.NaN;
    let httpStatus = 0;
    let grpcStatus: string | undefined;
    let grpcMessage: string | undefined;
    let messages = 0;
    let pending = Buffer.alloc(0);
    const chunks: Buffer[] = [];
    let finished = false;
    const finish = (problem?: string) => {
      if (finished) return;
      finished = true;
      const body = Buffer.concat(chunks);
      const totalMs = performance.now() - started;
      if (!problem) {
        if (httpStatus !== 200) problem = `HTTP ${httpStatus}: ${body.toString("utf8", 0, 200)}`;
        else if (spec.protocol === "grpc" && grpcStatus !== "0")
          problem = `grpc-status ${grpcStatus ?? "missing"}${grpcMessage ? ` (${decodeURIComponent(grpcMessage)})` : ""}`;
        else if (spec.protocol === "grpc" && messages === 0) problem = "no message in the response";
        else if (expectedBody && !body.equals(expectedBody))
          problem = `unexpected body (${body.length} bytes, ${expectedBody.length} expected)`;
      }
      if (spec.protocol === "connect") firstMessageMs = totalMs;
      resolve({ ok: !problem, problem, httpStatus, grpcStatus, body, messages, firstMessageMs, totalMs });
    };
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request({ ":method": "POST", ":path": spec.path, ...spec.headers });
    } catch (error) {
      finish(`request failed: ${(error as Error).message}`);
      return;
    }
    stream.on("response", (headers) => {
      httpStatus = Number(headers[":status"]);
      grpcStatus ??= headers["grpc-status"] as string | undefined;
      grpcMessage ??= headers["grpc-message"] as string | undefined;
    });
    stream.on("trailers", (trailers) => {
      grpcStatus = trailers["grpc-status"] as string | undefined;
      grpcMessage = trailers["grpc-message"] as string | undefined;
    });
    stream.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      if (spec.protocol !== "grpc") return;
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
        if (messages === 0) firstMessageMs = performance.now() - started;
        messages++;
        pending = pending.subarray(5 + pending.readUInt32BE(1));
      }
    });
    stream.on("error", (error) => finish(`stream error: ${error.message}`));
    stream.on("close", () => finish());
    // A server that never answers (overwhelmed, attacked) must not hang the harness.
    stream.setTimeout(callTimeoutMs, () => {
      finish(`no answer within ${callTimeoutMs / 1000} s`);
      stream.close(http2.constants.NGHTTP2_CANCEL);
    });
    stream.end(spec.body);
  });
}

/** One call on a fresh connection. */
export async function probe(spec: CallSpec, expectedBody?: Buffer): Promise<CallOutcome> {
  let session: http2.ClientHttp2Session;
  try {
    session = await connect(spec.origin);
  } catch (error) {
    const problem = `cannot connect to ${spec.origin}: ${(error as Error).message}`;
    return { ok: false, problem, httpStatus: 0, body: Buffer.alloc(0), messages: 0, firstMessageMs: Number.NaN, totalMs: 0 };
  }
  try {
    return await callOnce(session, spec, expectedBody);
  } finally {
    session.close();
  }
}

export interface Sampler {
  /** Stops sampling; the calls made and the problems seen. */
  stop(): Promise<{ calls: number; problems: string[] }>;
}

/** Calls `spec` every `intervalMs` on its own connection while a load runs, checking every answer. */
export function startSampler(spec: CallSpec, intervalMs: number, expectedBody?: Buffer): Sampler {
  let calls = 0;
  const problems: string[] = [];
  let stopped = false;
  const loop = (async () => {
    let session: http2.ClientHttp2Session | undefined;
    try {
      session = await connect(spec.origin);
      while (!stopped) {
        const outcome = await callOnce(session, spec, expectedBody);
        calls++;
        if (outcome.problem) problems.push(outcome.problem);
        await new Promise((resolve) => setTimeout(resolve, intervalMs));
      }
    } catch (error) {
      problems.push(`sampler: ${(error as Error).message}`);
    } finally {
      session?.close();
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return { calls, problems };
    },
  };
}

/** Time to the first message of `calls` sequential calls on one connection, unloaded. */
export async function firstMessageLatency(spec: CallSpec, calls: number): Promise<{ latency: Latency; problems: string[] }> {
  const session = await connect(spec.origin);
  const micros = new Float64Array(calls);
  const problems: string[] = [];
  try {
    for (let i = 0; i < calls; i++) {
      const outcome = await callOnce(session, spec);
      if (outcome.problem) problems.push(outcome.problem);
      micros[i] = outcome.firstMessageMs * 1000;
    }
  } finally {
    session.close();
  }
  return { latency: latencyOf(micros), problems };
}
