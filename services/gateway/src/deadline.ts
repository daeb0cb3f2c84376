import type { IncomingHttpHeaders } from "./downstream.js";
import type { CallProtocol } from "./rpc-protocol.js";

const grpcUnits: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/**
 * The deadline the caller asked for, in ms: `grpc-timeout` (gRPC, gRPC-Web) or
 * `connect-timeout-ms` (Connect); undefined when absent, NaN when malformed.
 */
export function requestedTimeoutMs(headers: IncomingHttpHeaders, protocol: CallProtocol): number | undefined {
  if (protocol.protocol === "connect") {
    const value = headers["connect-timeout-ms"];
    if (value === undefined) return undefined;
    return typeof value === "string" && /^\d{1,10}$/.test(value) ? Number(value) : Number.NaN;
  }
  const value = headers["grpc-timeout"];
  if (value === undefined) return undefined;
  const match = typeof value === "string" ? /^(\d{1,8})([HMSmun])$/.exec(value) : null;
  return match ? Number(match[1]) * (grpcUnits[match[2] as string] as number) : Number.NaN;
}

/** The deadline field of the upstream protocol, as [name, value]. */
export function timeoutField(upstreamProtocol: CallProtocol["protocol"], ms: number): [string, string] {
  const whole = Math.max(1, Math.ceil(ms));
  if (upstreamProtocol === "connect") return ["connect-timeout-ms", String(whole)];
  return ["grpc-timeout", whole < 100_000_000 ? `${whole}m` : `${Math.ceil(whole / 1000)}S`];
}
