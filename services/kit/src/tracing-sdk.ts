// The OpenTelemetry side of tracing.ts, loaded with import() only when tracing is on: nothing here
// is loaded by a process that does not trace.
import { ConnectError, type Interceptor, type StreamResponse } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import {
  type Context,
  context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapSetter,
  trace,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import type { ActiveTracing } from "./tracing.js";

const headersGetter: TextMapGetter<Headers> = {
  get: (carrier, key) => carrier.get(key) ?? undefined,
  keys: (carrier) => [...carrier.keys()],
};
const headersSetter: TextMapSetter<Headers> = { set: (carrier, key, value) => carrier.set(key, value) };

/** The Connect code name of what a call threw. */
function failure(span: Span, error: unknown): void {
  const e = ConnectError.from(error);
  span.setAttribute("rpc.connect_rpc.error_code", codeToString(e.code));
  span.setStatus({ code: SpanStatusCode.ERROR, message: e.rawMessage });
}

/** A streamed response's span ends when its last message has gone (or the stream failed). */
function endWithStream<T extends StreamResponse>(res: T, span: Span): T {
  const messages = res.message;
  async function* watched() {
    try {
      yield* messages;
    } catch (error) {
      failure(span, error);
      throw error;
    } finally {
      span.end();
    }
  }
  return { ...res, message: watched() };
}

/** The OpenTelemetry SDK: spans batched and exported as OTLP/HTTP JSON to `url`. */
export function createSdkTracing(options: { service: string; url: string }): ActiveTracing {
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ "service.name": options.service }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: options.url }))],
  });
  // The AsyncLocalStorage context manager: the span of a call is the active one in its handler.
  provider.register();
  const tracer = provider.getTracer("@portico/kit");
  const w3c = new W3CTraceContextPropagator();

  const rpcAttributes = (service: string, method: string) => ({
    "rpc.system": "connect_rpc",
    "rpc.service": service,
    "rpc.method": method,
  });

  /** Runs `next` with `span` active and ends the span when the call (or its stream) is done. */
  const around: (kind: SpanKind) => Interceptor = (kind) => (next) => async (req) => {
    const parent = kind === SpanKind.SERVER ? w3c.extract(ROOT_CONTEXT, req.header, headersGetter) : context.active();
    const span = tracer.startSpan(
      `${req.service.typeName}/${req.method.name}`,
      { kind, attributes: rpcAttributes(req.service.typeName, req.method.name) },
      parent,
    );
    const inSpan: Context = trace.setSpan(parent, span);
    if (kind === SpanKind.CLIENT) w3c.inject(inSpan, req.header, headersSetter);
    try {
      const res = await context.with(inSpan, () => next(req));
      if (res.stream) return endWithStream(res, span);
      span.end();
      return res;
    } catch (error) {
      failure(span, error);
      span.end();
      throw error;
    }
  };

  return {
    startSpan(name, kind, traceparent, attributes, startTime) {
      const parent = traceparent === undefined ? ROOT_CONTEXT : w3c.extract(ROOT_CONTEXT, { traceparent }, defaultTextMapGetter);
      // A number below the time origin is read as a performance.now() reading.
      const span = tracer.startSpan(
        name,
        { kind: kind === "server" ? SpanKind.SERVER : SpanKind.CLIENT, attributes, startTime },
        parent,
      );
      const carrier: Record<string, string> = {};
      w3c.inject(trace.setSpan(parent, span), carrier, defaultTextMapSetter);
      return {
        traceparent: carrier.traceparent as string,
        traceId: span.spanContext().traceId,
        end(error) {
          if (error !== undefined) {
            span.setAttribute("rpc.connect_rpc.error_code", error.code);
            span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
          }
          span.end();
        },
      };
    },
    serverInterceptor: around(SpanKind.SERVER),
    clientInterceptor: around(SpanKind.CLIENT),
    query(sql, run) {
      const parent = context.active();
      const operation = /^\s*(\w+)/.exec(sql)?.[1]?.toUpperCase() ?? "QUERY";
      const span = tracer.startSpan(
        operation,
        { kind: SpanKind.CLIENT, attributes: { "db.system.name": "postgresql", "db.query.text": sql } },
        parent,
      );
      return context.with(trace.setSpan(parent, span), run).then(
        (result) => {
          span.end();
          return result;
        },
        (error: unknown) => {
          span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
          span.end();
          throw error;
        },
      );
    },
    traceId() {
      const span = trace.getSpan(context.active());
      return span?.spanContext().traceId;
    },
    async close() {
      await provider.shutdown();
      trace.disable();
      context.disable();
    },
  };
}
