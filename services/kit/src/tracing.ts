import type { Interceptor } from "@connectrpc/connect";
import { ConfigError } from "./config-error.js";
import type { Env } from "./env-reader.js";

/** A span the caller ends itself (the gateway's proxied call). */
export interface TraceSpan {
  /** The W3C `traceparent` naming this span, for the request it makes downstream. */
  readonly traceparent: string;
  readonly traceId: string;
  /** Ends the span; `error` (a Connect code name and message) marks it failed. */
  end(error?: { code: string; message?: string }): void;
}

/** What tracing does while it is on (implemented with the OpenTelemetry SDK in tracing-sdk.ts). */
export interface ActiveTracing {
  /**
   * Continues `traceparent` (or starts a trace) with a span of `kind` the caller ends, started at
   * `startTime` (a `performance.now()` reading; default now).
   */
  startSpan(
    name: string,
    kind: "server" | "client",
    traceparent: string | undefined,
    attributes: Record<string, string>,
    startTime?: number,
  ): TraceSpan;
  /** A server call: a span continuing the request's `traceparent`, active while the handler runs. */
  readonly serverInterceptor: Interceptor;
  /** An outgoing call: a child span of the active one, its `traceparent` on the request. */
  readonly clientInterceptor: Interceptor;
  /** Runs a database query inside a child span of the active one. */
  query<T>(sql: string, run: () => Promise<T>): Promise<T>;
  /** The trace id of the active span, for log lines. */
  traceId(): string | undefined;
  /** Exports what is buffered and stops. */
  close(): Promise<void>;
}

export interface TracingOptions {
  /** `service.name` of the spans. */
  service: string;
  /** Where OTEL_* are read (default process.env). */
  env?: Env;
}

export interface Tracing {
  /** Tracing is on: spans are exported. */
  readonly enabled: boolean;
  /** Exports the spans still buffered and stops (call before the process exits). */
  close(): Promise<void>;
}

/** The process's tracing while it is on; undefined (every hook a no-op) while it is off. */
let active: ActiveTracing | undefined;

/** The tracing in force, or undefined when it is off: hooks check it per call and do nothing more when off. */
export function activeTracing(): ActiveTracing | undefined {
  return active;
}

/** Where the spans go: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as it is, else `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`. */
export function otlpTracesUrl(env: Env = process.env): string | undefined {
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  const url = traces || (base ? `${base.replace(/\/+$/, "")}/v1/traces` : undefined);
  if (url === undefined) return undefined;
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new Error("protocol");
  } catch {
    const name = traces ? "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" : "OTEL_EXPORTER_OTLP_ENDPOINT";
    throw new ConfigError(`${name}: "${traces || base}" is not valid; expected an http:// or https:// URL (OTLP/HTTP)`);
  }
  return url;
}

/**
 * Starts tracing for this process when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `_TRACES_ENDPOINT`) is set:
 * the OpenTelemetry SDK, loaded only then, exports spans over OTLP/HTTP (JSON) in batches, sampled
 * as `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` say (default: parent-based, always on).
 * Unset, nothing of the SDK is loaded and every hook costs one check. `OTEL_SDK_DISABLED=true` turns it off.
 */
export async function startTracing(options: TracingOptions): Promise<Tracing> {
  const env = options.env ?? process.env;
  const url = otlpTracesUrl(env);
  if (url === undefined || env.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true") {
    return { enabled: false, close: async () => {} };
  }
  if (active !== undefined) throw new Error("startTracing: tracing is already started in this process");
  const { createSdkTracing } = await import("./tracing-sdk.js");
  const started = createSdkTracing({ service: options.service, url });
  active = started;
  return {
    enabled: true,
    async close() {
      if (active === started) active = undefined;
      await started.close();
    },
  };
}

/**
 * Server interceptor: a span per call continuing the caller's `traceparent` (nothing when tracing is
 * off). Health checks (the gateway's, every few seconds per address) get none.
 */
export const tracingServerInterceptor: Interceptor = (next) => (req) =>
  active === undefined || req.service.typeName === "grpc.health.v1.Health" ? next(req) : active.serverInterceptor(next)(req);

/** Client interceptor: a span per outgoing call, its `traceparent` sent along (nothing when tracing is off). */
export const tracingClientInterceptor: Interceptor = (next) => (req) =>
  active === undefined ? next(req) : active.clientInterceptor(next)(req);

/** The active trace id (for log lines), undefined when tracing is off or no span is active. */
export function currentTraceId(): string | undefined {
  return active?.traceId();
}
