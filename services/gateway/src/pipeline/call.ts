import { Code, type ConnectError } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import type { TraceSpan } from "@portico/kit";
import { connectError } from "../connect-error.js";
import type { Downstream, IncomingHttpHeaders, OutgoingHttpHeaders } from "../downstream.js";
import { sendError } from "../error-response.js";
import type { ForwardedFor } from "../forwarded-for.js";
import type { ProxyOptions } from "../proxy.js";
import type { Route } from "../route-table.js";
import type { CallProtocol } from "../rpc-protocol.js";
import type { CustomCaller } from "../translate.js";

/** What every stage of the proxy shares: the options and the calls in flight (one per proxy, not per call). */
export interface ProxyContext {
  readonly options: ProxyOptions;
  inFlight: number;
}

/** What the proxy reports when a call ends (access log, metrics). */
export interface CallRecord {
  readonly route: Route | undefined;
  readonly path: string;
  readonly protocol: CallProtocol;
  /** The Connect code name, "ok" on success. */
  code: string;
  readonly startedAt: number;
  userId: string;
  requestId: string;
  clientIp: string;
  /** Refused by a rate limit. */
  rateLimited: boolean;
  /** The gateway's span of the call, while tracing is on (call-tracing.ts). */
  span: TraceSpan | undefined;
}

/** A call that passed routing and protocol checks, on its way through auth and policy. */
export interface PendingCall {
  readonly down: Downstream;
  readonly headers: IncomingHttpHeaders;
  /** `:path` with its query string. */
  readonly rawPath: string;
  readonly route: Route;
  readonly protocol: CallProtocol;
  readonly forwarded: ForwardedFor;
  readonly record: CallRecord;
  /** A REST call (rest/): always translated, its request built and its answer written by it. */
  readonly custom?: CustomCaller;
}

export const codeString = (code: Code): string => ((code as number) === 0 ? "ok" : codeToString(code));

export function tooLarge(declared: number, max: number): ConnectError {
  return connectError(`message of ${declared} bytes exceeds the limit of ${max} bytes`, Code.ResourceExhausted);
}

/** Answers an error in the caller's protocol; whatever the caller still sends is not wanted. */
export function reject(down: Downstream, protocol: CallProtocol, error: ConnectError, headers?: OutgoingHttpHeaders): void {
  sendError(down, protocol, error, headers);
  down.resume();
}

/** A bug, not a caller's fault: logged, answered `internal`, and the process keeps serving. */
export function internalError(ctx: ProxyContext, call: PendingCall, error: unknown): void {
  ctx.options.logger.error({ err: error, method: call.route.path }, "gateway failed a call");
  if (!call.down.headersSent) finishRejected(ctx, call, connectError("internal gateway error", Code.Internal));
  else call.down.close();
}

export function finishRejected(ctx: ProxyContext, call: PendingCall, error: ConnectError): void {
  call.record.code = codeString(error.code);
  reject(call.down, call.protocol, error);
  ctx.options.onCallEnd?.(call.record);
}
