import { Code } from "@connectrpc/connect";
import type { AuthEntry } from "../auth-cache.js";
import { startCallSpan } from "../call-tracing.js";
import { connectError } from "../connect-error.js";
import { requestedTimeoutMs, timeoutField } from "../deadline.js";
import { newRequestId, upstreamRequestFields } from "../forward-headers.js";
import { type HeaderList, replaceFields } from "../h2/index.js";
import { runTranslated, type TranslatedUpstream, translatedRequestFields } from "../translate.js";
import type { UpstreamTarget } from "../upstream.js";
import { finishRejected, type PendingCall, type ProxyContext, tooLarge } from "./call.js";
import { type Attempt, startLife, watchUpstream } from "./call-life.js";
import { runPassThrough } from "./pass-through.js";
import { retryAttempt } from "./retry.js";

/** A gRPC-Web text request as the binary request the upstream gets: its content type, no content-length. */
const contentLength = new Set(["content-length"]);
const binaryGrpcWeb: HeaderList = [["content-type", "application/grpc-web+proto"]];

/** Default of `ProxyOptions.maxResponseMessageBytes`. */
export const defaultMaxResponseMessageBytes = 16 * 1024 * 1024;

/**
 * Stage 4, forward: the deadline, the request size, whether the framing must be translated, the
 * upstream request headers; opens the upstream stream on the best address and hands the call to
 * pass-through (same protocol both sides) or translation.
 */
export function forward(ctx: ProxyContext, call: PendingCall, entry: AuthEntry | undefined): void {
  const { down, headers, route, protocol, record } = call;
  if (down.destroyed) return;
  if (entry !== undefined) record.userId = entry.identity.userId;
  const upstream = route.upstream;
  if (upstream === undefined) {
    finishRejected(ctx, call, connectError("no upstream", Code.Unimplemented));
    return;
  }

  // Deadline: the caller's, capped by the policy; the policy's when the caller sets none.
  const requested = requestedTimeoutMs(headers, protocol);
  if (requested !== undefined && Number.isNaN(requested)) {
    finishRejected(ctx, call, connectError("malformed timeout header", Code.InvalidArgument));
    return;
  }
  const timeoutMs = requested === undefined ? route.timeoutMs : Math.min(requested, route.timeoutMs);

  // Size: a Connect unary body by its declared length; enveloped messages by their prefixes as they pass.
  const maxBytes = route.maxRequestBytes;
  if (!protocol.enveloped && !protocol.get) {
    const declared = Number(headers["content-length"] ?? 0);
    if (declared > maxBytes) {
      finishRejected(ctx, call, tooLarge(declared, maxBytes));
      return;
    }
  }

  // Pass the caller's protocol through when the upstream speaks it; otherwise translate the framing.
  const jsonCaller = protocol.codec === "json";
  let translated: TranslatedUpstream | undefined;
  let transcode = false;
  if (upstream.protocol === "connect") {
    if (jsonCaller && !upstream.json) {
      translated = "grpc";
      transcode = true;
    }
  } else {
    transcode = jsonCaller && !upstream.json;
    if (protocol.protocol !== upstream.protocol || transcode) translated = upstream.protocol;
  }
  if (call.custom !== undefined) {
    // REST: the gateway builds the binary request message and reads the binary answer.
    translated = upstream.protocol === "connect" ? "grpc" : upstream.protocol;
    transcode = true;
  }

  startCallSpan(call);
  const q = call.rawPath.indexOf("?");
  const path = translated === undefined || q < 0 ? call.rawPath : call.rawPath.slice(0, q);
  const identity =
    entry === undefined
      ? ctx.options.anonymousHeaders?.(route.audience)
      : ctx.options.auth.headers(entry, route.audience, call.forwarded.clientIp);
  /** Opens the upstream stream of one attempt, on the best address other than `exclude`. */
  const open = (exclude?: UpstreamTarget): Attempt => {
    const target = upstream.pick(exclude);
    // A caller that shut its window gets the upstream's small initial window only.
    const shutReader = down.sendWindowOpen === false;
    const session = target.session(shutReader, route.kind !== "unary");
    const requestId = newRequestId();
    record.requestId = requestId;
    const fields = upstreamRequestFields(
      headers,
      {
        method: protocol.get && translated === undefined ? "GET" : "POST",
        scheme: session.scheme,
        path,
        authority: target.authority,
      },
      call.forwarded,
      identity,
      requestId,
      record.span?.traceparent,
    );
    const options = { endStream: protocol.get && translated === undefined };
    if (translated !== undefined) {
      fields.push(timeoutField("grpc", timeoutMs));
      translatedRequestFields(fields, protocol, translated, transcode);
      return { target, up: session.requestFields(fields, options) };
    }
    fields.push(timeoutField(protocol.protocol, timeoutMs));
    if (protocol.protocol === "grpc") fields.push(["te", "trailers"]);
    if (protocol.text) {
      // Connect servers speak gRPC-Web in binary only: the gateway does the base64.
      replaceFields(fields, contentLength, binaryGrpcWeb);
    }
    return { target, up: session.requestFields(fields, options) };
  };

  let first: Attempt;
  try {
    first = open();
  } catch (error) {
    finishRejected(ctx, call, connectError(`upstream unavailable: ${(error as Error).message}`, Code.Unavailable));
    return;
  }
  const life = startLife(ctx, down, first, protocol, timeoutMs, record, call.custom);
  upstream.earnRetry();
  // Idempotent unary calls may be retried on another address, before any response byte went out.
  const reopen = route.policy.idempotent && route.kind === "unary" ? () => retryAttempt(life, upstream, open) : undefined;
  if (translated === undefined) {
    runPassThrough(down, life, protocol, maxBytes, record, route.kind === "unary", reopen);
    return;
  }
  runTranslated({
    watch: (up, broken) => watchUpstream(life, up, broken),
    reopen,
    down,
    up: first.up,
    headers,
    caller: protocol,
    upstream: translated,
    transcoder:
      transcode && call.custom === undefined
        ? { input: route.method.input, output: route.method.output, registry: ctx.options.routes().registry }
        : undefined,
    custom: call.custom,
    query: q < 0 ? "" : call.rawPath.slice(q + 1),
    maxBytes,
    maxResponseBytes: ctx.options.maxResponseMessageBytes?.() ?? defaultMaxResponseMessageBytes,
    life,
  });
}
