import { type IncomingHttpHeaders as H2Headers, constants as h2 } from "node:http2";
import { gunzipSync } from "node:zlib";
import { type DescMessage, fromBinary, fromJsonString, type Registry, toBinary, toJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus, codeToString, errorToJson } from "@connectrpc/connect/protocol-connect";
import { codeFromHttpStatus, findTrailerError } from "@connectrpc/connect/protocol-grpc";
import type { Downstream, IncomingHttpHeaders, OutgoingHttpHeaders } from "./downstream.js";
import { createBase64Decoder, createBase64Encoder, createEnvelopeReader } from "./envelope-reader.js";
import { connectEndStream, envelope, grpcStatusTrailers, grpcWebTrailerFrame } from "./error-response.js";
import type { H2Stream } from "./h2/index.js";
import { createRequestReplay } from "./request-replay.js";
import type { CallProtocol } from "./rpc-protocol.js";

/** What the upstream of a translated call speaks. */
export type TranslatedUpstream = "grpc" | "grpc-web";

/** JSON ↔ binary conversion of one method's messages (the caller speaks JSON, the upstream binary). */
export interface Transcoder {
  input: DescMessage;
  output: DescMessage;
  registry: Registry;
}

/** The part of a call's lifecycle translation needs (owned by the proxy). */
export interface CallLife {
  readonly done: boolean;
  /** The error the call failed with, once it did. */
  readonly failure: ConnectError | undefined;
  /** Ends the call with an error in the caller's protocol and cancels the upstream stream. */
  fail(error: ConnectError): void;
  /** Marks the call finished with a code (the response is complete or being completed). */
  finish(code: string): void;
  /** The upstream answered (for outlier detection). */
  reached(): void;
  upstreamFailed(reason: string): void;
}

export interface TranslateOptions {
  down: Downstream;
  up: H2Stream;
  /** The caller's incoming headers (compression of the request). */
  headers: IncomingHttpHeaders;
  caller: CallProtocol;
  upstream: TranslatedUpstream;
  transcoder?: Transcoder;
  /** The query string of a Connect GET. */
  query: string;
  maxBytes: number;
  life: CallLife;
  /** Calls `broken` when `up` closes before it ended normally (reset, connection lost). */
  watch(up: H2Stream, broken: () => void): void;
  /**
   * For calls that may be retried: moves the call to a new upstream stream on another address,
   * or answers undefined when it may not (retry budget, no address). Used at most once.
   */
  reopen?: () => H2Stream | undefined;
}

/** Response headers that belong to the upstream's framing, not to the caller's metadata. */
const framingHeaders = new Set([
  ":status",
  "content-type",
  "content-length",
  "content-encoding",
  "grpc-encoding",
  "grpc-accept-encoding",
  "grpc-status",
  "grpc-message",
  "grpc-status-details-bin",
  "date",
  "trailer",
]);

function metadataOf(headers: H2Headers | Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || framingHeaders.has(name) || name.charCodeAt(0) === 58) continue;
    out[name] = value;
  }
  return out;
}

function toHeaders(record: Record<string, string | string[] | number | undefined>): Headers {
  const headers = new Headers();
  for (const name in record) {
    const value = record[name];
    if (value === undefined || name.charCodeAt(0) === 58) continue;
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, String(v));
  }
  return headers;
}

/** Sets the upstream request headers of a translated call (content type, framing and compression headers). */
export function translatedRequestHeaders(
  out: OutgoingHttpHeaders,
  caller: CallProtocol,
  upstream: TranslatedUpstream,
  transcoded: boolean,
): void {
  for (const name of [
    "content-length",
    "content-encoding",
    "accept-encoding",
    "connect-protocol-version",
    "connect-content-encoding",
    "connect-accept-encoding",
    "grpc-encoding",
    "grpc-accept-encoding",
    "x-grpc-web",
    "x-user-agent",
    "te",
  ]) {
    delete out[name];
  }
  const json = caller.codec === "json" && !transcoded;
  if (upstream === "grpc") {
    out["content-type"] = json ? "application/grpc+json" : "application/grpc";
    out.te = "trailers";
  } else {
    out["content-type"] = json ? "application/grpc-web+json" : "application/grpc-web+proto";
    out["x-grpc-web"] = "1";
  }
  out["grpc-accept-encoding"] = "identity";
}

/** Writes an upstream's messages and status to the caller in the caller's own protocol. */
export interface CallerWriter {
  message(data: Buffer): void;
  end(
    error: ConnectError | undefined,
    metadata: Record<string, string | string[]>,
    trailers: Record<string, string | string[]>,
  ): void;
}

export function createCallerWriter(down: Downstream, caller: CallProtocol, life: Pick<CallLife, "failure">): CallerWriter {
  let metadata: Record<string, string | string[]> = {};
  let started = false;
  const start = (extra: OutgoingHttpHeaders = {}, options?: { endStream?: boolean; waitForTrailers?: boolean }) => {
    started = true;
    if (down.destroyed) return;
    down.respond({ ":status": 200, "content-type": caller.contentType, ...metadata, ...extra }, options);
  };
  const withMetadata = (m: Record<string, string | string[]>) => {
    metadata = m;
  };
  switch (caller.protocol) {
    case "grpc": {
      let trailers: OutgoingHttpHeaders = {};
      down.on("wantTrailers", () => down.sendTrailers(life.failure ? grpcStatusTrailers(life.failure) : trailers));
      return {
        message(data) {
          if (!started) start({}, { waitForTrailers: true });
          down.write(envelope(0, data));
        },
        end(error, m, t) {
          const status = grpcStatusTrailers(error);
          if (!started) {
            withMetadata(m);
            start({ ...t, ...status }, { endStream: true });
            return;
          }
          trailers = { ...t, ...status };
          down.end();
        },
      };
    }
    case "grpc-web": {
      const base64 = caller.text ? createBase64Encoder() : undefined;
      const write = (bytes: Buffer) => down.write(base64 ? base64.push(bytes) : bytes);
      return {
        message(data) {
          if (!started) start();
          write(envelope(0, data));
        },
        end(error, m, t) {
          if (!started) {
            withMetadata(m);
            start();
          }
          const frame = grpcWebTrailerFrame({ ...t, ...grpcStatusTrailers(error) });
          if (base64) down.end(Buffer.concat([base64.push(frame), base64.end()]));
          else down.end(frame);
        },
      };
    }
    default: {
      if (caller.enveloped) {
        return {
          message(data) {
            if (!started) start();
            down.write(envelope(0, data));
          },
          end(error, m, t) {
            if (!started) {
              withMetadata(m);
              start();
            }
            down.end(connectEndStream(error, t));
          },
        };
      }
      // Connect unary: the one message waits for the status.
      let body: Buffer | undefined;
      return {
        message(data) {
          body = body === undefined ? data : Buffer.concat([body, data]);
        },
        end(error, m, t) {
          if (down.destroyed) return;
          const headers: OutgoingHttpHeaders = { ...m };
          for (const name in t) headers[`trailer-${name}`] = t[name];
          if (error) {
            headers[":status"] = codeToHttpStatus(error.code);
            headers["content-type"] = "application/json";
            down.respond(headers);
            down.end(Buffer.from(JSON.stringify(errorToJson(error, undefined))));
            return;
          }
          headers[":status"] = 200;
          headers["content-type"] = caller.contentType;
          down.respond(headers);
          down.end(body ?? Buffer.alloc(0));
        },
      };
    }
  }
}

function codeName(error: ConnectError | undefined): string {
  return error === undefined ? "ok" : codeToString(error.code);
}

/**
 * Runs a call whose caller and upstream speak different protocols (or codecs): re-frames the
 * request into the upstream's envelopes, and the upstream's envelopes, trailers and status into
 * the caller's protocol; with a transcoder, converts each message between JSON and binary.
 */
export function runTranslated(options: TranslateOptions): void {
  const { down, caller, life, transcoder, maxBytes } = options;
  const gzip = "gzip";
  /** The upstream stream of the current attempt (a retry replaces it). */
  let up = options.up;
  let responded = false;
  const replay = createRequestReplay(options.reopen);
  const upWrite = (bytes: Buffer) => {
    replay.sent(bytes);
    up.write(bytes);
  };
  const upEnd = () => {
    replay.ended();
    if (!up.closed) up.end();
  };
  /** Before any response: another address, once, when the call may be retried; otherwise the call fails. */
  const retryOrFail = (error: ConnectError) => {
    const next = responded
      ? undefined
      : replay.retry((stream) => {
          up = stream;
          attach(stream);
        });
    if (next === undefined) life.fail(error);
  };

  const decodeMessage = (flags: number, data: Buffer, encoding: string | undefined): Buffer => {
    if ((flags & 1) === 0) return data;
    if (encoding !== gzip) throw new ConnectError(`unsupported compression "${encoding ?? ""}"`, Code.Internal);
    return gunzipSync(data, { maxOutputLength: Math.max(maxBytes, 1) * 4 });
  };
  const toUpstream = (json: Buffer): Buffer => {
    if (!transcoder) return json;
    try {
      const message = fromJsonString(transcoder.input, json.toString("utf8"), { registry: transcoder.registry });
      return Buffer.from(toBinary(transcoder.input, message));
    } catch (error) {
      throw new ConnectError(`invalid JSON request: ${(error as Error).message}`, Code.InvalidArgument);
    }
  };
  const toCaller = (binary: Buffer): Buffer => {
    if (!transcoder) return binary;
    const message = fromBinary(transcoder.output, binary);
    return Buffer.from(toJsonString(transcoder.output, message, { registry: transcoder.registry }));
  };

  // ---- Request: caller framing → upstream envelopes.
  const callerEncoding =
    caller.protocol === "connect"
      ? (options.headers[caller.enveloped ? "connect-content-encoding" : "content-encoding"] as string | undefined)
      : (options.headers["grpc-encoding"] as string | undefined);
  const sendMessage = (flags: number, data: Buffer) => {
    if (transcoder || ((flags & 1) !== 0 && callerEncoding !== gzip)) {
      upWrite(envelope(0, toUpstream(decodeMessage(flags, data, callerEncoding))));
    } else {
      upWrite(envelope(flags & 1, data));
    }
  };
  const guard = (fn: () => void) => {
    try {
      fn();
    } catch (error) {
      life.fail(ConnectError.from(error));
    }
  };

  if (caller.get) {
    guard(() => {
      const params = new URLSearchParams(options.query);
      const message = params.get("message") ?? "";
      const data = params.get("base64") === "1" ? Buffer.from(message, "base64url") : Buffer.from(message, "utf8");
      if (data.length > maxBytes) throw tooLarge(data.length, maxBytes);
      const compressed = params.get("compression");
      sendMessage(compressed && compressed !== "identity" ? 1 : 0, data);
      upEnd();
    });
  } else if (!caller.enveloped) {
    // Connect unary: the whole body is the message.
    const chunks: Buffer[] = [];
    let size = 0;
    down.on("data", (chunk: Buffer) => {
      if (life.done) return;
      size += chunk.length;
      if (size > maxBytes) return life.fail(tooLarge(size, maxBytes));
      chunks.push(chunk);
    });
    const onEnd = () => {
      if (life.done) return;
      guard(() => {
        sendMessage(callerEncoding && callerEncoding !== "identity" ? 1 : 0, Buffer.concat(chunks));
        upEnd();
      });
    };
    // An empty body may have ended while the call waited for auth.
    if (down.readableEnded) onEnd();
    else down.on("end", onEnd);
  } else {
    const decode = caller.text ? createBase64Decoder() : undefined;
    const reader = createEnvelopeReader(maxBytes, (flags, data) => sendMessage(flags, data));
    down.on("data", (chunk: Buffer) => {
      if (life.done) return;
      guard(() => {
        if (!reader.push(decode ? decode(chunk) : chunk)) life.fail(tooLarge(reader.declared, maxBytes));
      });
    });
    const onEnd = () => {
      if (!life.done) upEnd();
    };
    if (down.readableEnded) onEnd();
    else down.on("end", onEnd);
  }

  // ---- Response: upstream envelopes, trailers and status → caller protocol.
  const writer = createCallerWriter(down, caller, life);
  let metadata: Record<string, string | string[]> = {};
  let trailers: Record<string, string | string[] | undefined> | undefined;
  let upstreamEncoding: string | undefined;
  let ended = false;
  const end = (error: ConnectError | undefined, t: Record<string, string | string[] | undefined>) => {
    if (life.done || ended) return;
    ended = true;
    life.finish(codeName(error));
    writer.end(error, metadata, metadataOf(t));
  };
  const reader = createEnvelopeReader(2 ** 31, (flags, data) => {
    if (life.done || ended) return;
    if ((flags & 0x80) !== 0) {
      // gRPC-Web trailer frame.
      const parsed: Record<string, string> = {};
      for (const line of data.toString("utf8").split("\r\n")) {
        const i = line.indexOf(":");
        if (i > 0) parsed[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      trailers = parsed;
      return;
    }
    guard(() => writer.message(toCaller(decodeMessage(flags, data, upstreamEncoding))));
  });

  const attach = (stream: H2Stream) => {
    options.watch(stream, () =>
      retryOrFail(new ConnectError(responded ? "upstream connection lost" : "upstream unavailable", Code.Unavailable)),
    );
    stream.on("response", (h: H2Headers, flags: number) => {
      if (life.done || stream !== up) return;
      const status = Number(h[":status"]);
      const contentType = String(h["content-type"] ?? "");
      const expected = options.upstream === "grpc" ? "application/grpc" : "application/grpc-web";
      if (status !== 200 || !contentType.startsWith(expected)) {
        if (status >= 500) life.upstreamFailed(`HTTP ${status}`);
        const code = status === 200 ? Code.Unknown : codeFromHttpStatus(status);
        const error = new ConnectError(`upstream answered HTTP ${status}`, code);
        if (status === 502 || status === 503) return retryOrFail(error);
        return life.fail(error);
      }
      life.reached();
      responded = true;
      upstreamEncoding = h["grpc-encoding"] as string | undefined;
      metadata = metadataOf(h);
      if ((flags & h2.NGHTTP2_FLAG_END_STREAM) !== 0 || h["grpc-status"] !== undefined) {
        // Trailers-only.
        end(findTrailerError(toHeaders(h)), {});
      }
    });
    stream.on("data", (chunk: Buffer) => {
      if (!life.done && stream === up) reader.push(chunk);
    });
    stream.on("trailers", (t: H2Headers) => {
      if (stream === up) trailers = t;
    });
    stream.on("end", () => {
      if (life.done || ended || stream !== up) return;
      if (trailers === undefined || trailers["grpc-status"] === undefined) {
        end(new ConnectError("upstream ended the call without a status", Code.Internal), {});
        return;
      }
      end(findTrailerError(toHeaders(trailers)), trailers);
    });
  };
  attach(up);
}

function tooLarge(declared: number, max: number): ConnectError {
  return new ConnectError(`message of ${declared} bytes exceeds the limit of ${max} bytes`, Code.ResourceExhausted);
}
