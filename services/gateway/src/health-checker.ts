import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as Status,
} from "@portico/gen/grpc/health/v1/health_pb.js";
import type { Logger } from "@portico/kit";
import { createEnvelopeReader } from "./envelope-reader.js";
import { envelope } from "./error-response.js";
import { readGrpcStatus } from "./grpc-status-reader.js";
import type { H2Session } from "./h2/index.js";
import type { Upstream, UpstreamTarget } from "./upstream.js";

export interface HealthCheckerOptions {
  upstreams: () => Iterable<Upstream>;
  /** Between two rounds of checks (ms). */
  intervalMs: number;
  /** One check's timeout (ms). */
  timeoutMs: number;
  /** Extra request headers (the gateway's own identity assertion). */
  headers: () => Record<string, string>;
  logger: Logger;
}

export interface HealthChecker {
  /** Runs one round now. */
  checkAll(): Promise<void>;
  /** Checks one address now (one that DNS just found). */
  check(upstream: Upstream, target: UpstreamTarget): Promise<void>;
  close(): void;
}

const request = Buffer.from(toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service: "" })));
const grpcStatus = {
  ok: "0",
  unimplemented: "12",
  unauthenticated: "16",
};

/** One `grpc.health.v1.Health/Check` over the target's pooled session: undefined when healthy, else why not. */
export function checkHealth(
  upstream: Upstream,
  target: UpstreamTarget,
  options: Pick<HealthCheckerOptions, "timeoutMs" | "headers"> & {
    /** This session of the target's rather than the pooled one for the next stream (a keep-alive). */
    session?: H2Session;
  },
): Promise<string | undefined> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (reason: string | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!stream.closed) stream.close();
      resolve(reason);
    };
    const web = upstream.protocol === "grpc-web";
    const stream = (options.session ?? target.session()).request({
      ":method": "POST",
      ":path": "/grpc.health.v1.Health/Check",
      ":authority": target.authority,
      "content-type": web ? "application/grpc-web+proto" : "application/grpc",
      ...(web ? { "x-grpc-web": "1" } : { te: "trailers" }),
      "grpc-timeout": `${options.timeoutMs}m`,
      ...options.headers(),
    });
    const timer = setTimeout(() => done(`no health answer within ${options.timeoutMs} ms`), options.timeoutMs);
    let serving: Status | undefined;
    const grpc = readGrpcStatus(stream, (status) => done(`health check answered HTTP ${status}`));
    const reader = createEnvelopeReader(1 << 20, (flags, data) => {
      if ((flags & 0x80) !== 0) grpc.readTrailerBlock(data);
      else {
        try {
          serving = fromBinary(HealthCheckResponseSchema, data).status;
        } catch (error) {
          // An upstream's bad answer is its failed check, never the gateway's crash.
          done(`health check answered no HealthCheckResponse: ${(error as Error).message}`);
        }
      }
    });
    stream.on("data", (chunk: Buffer) => reader.push(chunk));
    stream.on("error", (error) => done(error.message));
    stream.on("close", () => {
      const status = grpc.status;
      if (status === grpcStatus.ok) done(serving === Status.SERVING ? undefined : `health status ${Status[serving ?? 0]}`);
      // A server without a health service (or one guarding it) is alive.
      else if (status === grpcStatus.unimplemented || status === grpcStatus.unauthenticated) done(undefined);
      else done(status === undefined ? "health check failed" : `health check answered grpc-status ${status}`);
    });
    stream.end(envelope(0, request));
  });
}

/**
 * Active health checks: every interval, `grpc.health.v1.Health/Check` on every address of every
 * upstream; an address that fails is taken out of rotation until it passes again, and an address
 * found by DNS enters it with its first pass.
 */
export function startHealthChecker(options: HealthCheckerOptions): HealthChecker {
  let running: Promise<void> | undefined;
  const check = (upstream: Upstream, target: UpstreamTarget): Promise<void> =>
    checkHealth(upstream, target, options)
      .catch((error: unknown) => (error as Error).message)
      .then((reason) => {
        const healthy = reason === undefined;
        const fields = { upstream: upstream.service, address: target.address, reason };
        if (target.pending) {
          // A new address (DNS) joins the rotation with its first passing check.
          if (healthy) options.logger.info(fields, "upstream address joined after a passing health check");
          else if (target.lastError !== reason) options.logger.warn(fields, "new upstream address fails its health check");
        } else if (healthy !== target.healthy) {
          if (healthy) options.logger.info(fields, "upstream address healthy again");
          else options.logger.warn(fields, "upstream address unhealthy: out of rotation");
        }
        target.healthy = healthy;
        if (healthy) target.pending = false;
        else target.lastError = reason;
      });
  const checkAll = () => {
    running ??= (async () => {
      const checks: Promise<void>[] = [];
      for (const upstream of options.upstreams()) {
        for (const target of upstream.targets) checks.push(check(upstream, target));
      }
      await Promise.all(checks);
    })().finally(() => {
      running = undefined;
    });
    return running;
  };
  const timer = setInterval(() => void checkAll(), options.intervalMs);
  timer.unref();
  void checkAll();
  return {
    checkAll,
    check,
    close: () => clearInterval(timer),
  };
}
