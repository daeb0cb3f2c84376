import type { Logger } from "@portico/kit";
import type { CallRecord } from "./pipeline/call.js";

/**
 * Writes one access-log line for a finished call that took `ms` milliseconds. The gateway's own
 * is `createAccessLogFile` (a JSON line per call on stdout); `accessLogOn` puts the same fields on
 * a pino logger instead.
 */
export type AccessLog = (call: CallRecord, ms: number) => void;

/** The access log on a pino logger: each call's fields as the logged object, at `info`. */
export function accessLogOn(logger: Logger): AccessLog {
  return (call, ms) =>
    logger.info({
      requestId: call.requestId,
      method: call.path,
      protocol: call.protocol.protocol,
      code: call.code,
      ms: Math.round(ms * 100) / 100,
      userId: call.userId || undefined,
      ip: call.clientIp,
      trace_id: call.span?.traceId,
    });
}
