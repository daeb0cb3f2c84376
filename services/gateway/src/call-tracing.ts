import { activeTracing } from "@portico/kit";
import type { CallRecord, PendingCall } from "./pipeline/call.js";

/**
 * While tracing is on (`OTEL_EXPORTER_OTLP_ENDPOINT`, kit's `startTracing`): a span for the proxied
 * call, continuing the caller's `traceparent` or starting a trace; its own `traceparent` goes to the
 * upstream. The span starts when the call arrived (auth and policy included). While it is off: one
 * check, nothing allocated.
 */
export function startCallSpan(call: PendingCall): void {
  const tracing = activeTracing();
  if (tracing === undefined) return;
  const { route, headers, record } = call;
  const service = route.service.typeName;
  const method = route.method.name;
  const incoming = headers.traceparent;
  record.span = tracing.startSpan(
    `${service}/${method}`,
    "server",
    typeof incoming === "string" ? incoming : undefined,
    {
      "rpc.system": "connect_rpc",
      "rpc.service": service,
      "rpc.method": method,
      "portico.protocol": call.protocol.protocol,
    },
    record.startedAt,
  );
}

/** Ends the call's span, if it has one, with the call's outcome. */
export function endCallSpan(record: CallRecord): void {
  const span = record.span;
  if (span === undefined) return;
  record.span = undefined;
  span.end(record.code === "ok" ? undefined : { code: record.code });
}
