import { type IncomingHttpHeaders as H2Headers, constants as h2 } from "node:http2";
import { promisify } from "node:util";
import { gunzip } from "node:zlib";
import { type DescMessage, fromBinary, fromJsonString, type Registry, toBinary, toJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { codeFromHttpStatus, findTrailerError } from "@connectrpc/connect/protocol-grpc";
import { type CallerWriter, createCallerWriter } from "./caller-writer.js";
import { connectError } from "./connect-error.js";
import type { Downstream, IncomingHttpHeaders } from "./downstream.js";
import { createBase64Decoder, createEnvelopeReader } from "./envelope-reader.js";
import { envelope } from "./error-response.js";
import { type H2Stream, type HeaderList, replaceFields } from "./h2/index.js";
import { tooLarge } from "./pipeline/call.js";
import { createRequestReplay } from "./request-replay.js";
import type { CallProtocol } from "./rpc-protocol.js";
import { parseTrailerBlock } from "./trailer-block.js";

const gunzipAsync = promisify(gunzip);

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

/**
 * A caller that speaks none of the RPC protocols (REST): it turns its whole request body into the
 * upstream's request message, and writes the upstream's answer in its own terms.
 */
export interface CustomCaller {
  /** The binary request message from the caller's whole (decompressed) body; throws a ConnectError for bad input. */
  request(body: Buffer): Uint8Array;
  /** Writes the upstream's metadata, binary messages and status to the caller. */
  writer(down: Downstream): CallerWriter;
  /** Ends a response already begun with an error the gateway met (deadline, upstream lost). */
  endWithError(down: Downstream, error: ConnectError): void;
}

export interface TranslateOptions {
  down: Downstream;
  up: H2Stream;
  /** The caller's incoming headers (compression of the request). */
  headers: IncomingHttpHeaders;
  caller: CallProtocol;
  upstream: TranslatedUpstream;
  transcoder?: Transcoder;
  /** A REST caller: replaces the caller protocol's request reading (after the body is whole) and writer. */
  custom?: CustomCaller;
  /** The query string of a Connect GET. */
  query: string;
  /** Largest request message (the policy's limit). */
  maxBytes: number;
  /** Largest response message: a bigger one fails the call `resource_exhausted`, nothing of it held. */
  maxResponseBytes: number;
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
  const out = Object.create(null) as Record<string, string | string[]>;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || framingHeaders.has(name) || name.charCodeAt(0) === 58) continue;
    out[name] = value;
  }
  return out;
}

/**
 * The upstream's status from its trailers (or trailers-only headers), and the metadata that goes on to
 * the caller. A field no header can carry (a gRPC-Web trailer block is text, decoded as UTF-8) fails
 * the call with Internal and no metadata: the caller's headers could not carry it either.
 */
function upstreamStatus(record: Record<string, string | string[] | undefined>): {
  error: ConnectError | undefined;
  metadata: Record<string, string | string[] | undefined>;
} {
  const headers = new Headers();
  for (const name in record) {
    const value = record[name];
    if (value === undefined || name.charCodeAt(0) === 58) continue;
    try {
      for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
    } catch {
      return {
        error: connectError(`upstream sent trailer ${JSON.stringify(name)} with an invalid value`, Code.Internal),
        metadata: {},
      };
    }
  }
  return { error: findTrailerError(headers), metadata: record };
}

/** Framing and compression headers of the caller's protocol: a translated call's upstream gets its own. */
const callerFraming = new Set([
  "content-length",
  "content-encoding",
  "accept-encoding",
  "connect-protocol-version",
  "connect-content-encoding",
  "connect-accept-encoding",
  "grpc-encoding",
  "x-grpc-web",
  "x-user-agent",
  "te",
]);

/** Makes a translated call's upstream request fields: its content type, framing and compression headers. */
export function translatedRequestFields(
  fields: HeaderList,
  caller: CallProtocol,
  upstream: TranslatedUpstream,
  transcoded: boolean,
): void {
  const json = caller.codec === "json" && !transcoded;
  replaceFields(
    fields,
    callerFraming,
    upstream === "grpc"
      ? [
          ["content-type", json ? "application/grpc+json" : "application/grpc"],
          ["te", "trailers"],
          ["grpc-accept-encoding", "identity"],
        ]
      : [
          ["content-type", json ? "application/grpc-web+json" : "application/grpc-web+proto"],
          ["x-grpc-web", "1"],
          ["grpc-accept-encoding", "identity"],
        ],
  );
}

function codeName(error: ConnectError | undefined): string {
  return error === undefined ? "ok" : codeToString(error.code);
}

/** Work on the messages of one direction, in order: at once while nothing waits, queued behind asynchronous work otherwise. */
interface Lane {
  run(step: () => void | Promise<void>): void;
  /** Asynchronous work (decompression) is in progress or queued. */
  readonly busy: boolean;
}

function createLane(onIdle: () => void, onError: (error: unknown) => void): Lane {
  let tail: Promise<void> | undefined;
  const wait = (work: Promise<void>) => {
    const settled = work.catch(onError);
    tail = settled;
    void settled.then(() => {
      if (tail !== settled) return;
      tail = undefined;
      onIdle();
    });
  };
  return {
    run(step) {
      if (tail !== undefined) {
        wait(tail.then(step));
        return;
      }
      let result: void | Promise<void>;
      try {
        result = step();
      } catch (error) {
        onError(error);
        return;
      }
      if (result !== undefined) wait(result);
    },
    get busy() {
      return tail !== undefined;
    },
  };
}

/**
 * Decompresses one gzip message off the event loop (zlib's thread pool), refusing output larger
 * than `maxBytes` as `resource_exhausted`; a broken message is `code`.
 */
async function gunzipMessage(data: Buffer, encoding: string | undefined, maxBytes: number, code: Code): Promise<Buffer> {
  if (encoding !== "gzip") throw connectError(`unsupported compression "${encoding ?? ""}"`, Code.Internal);
  try {
    return await gunzipAsync(data, { maxOutputLength: Math.max(maxBytes, 1) });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
      throw connectError(`decompressed message exceeds the limit of ${maxBytes} bytes`, Code.ResourceExhausted);
    }
    throw connectError(`invalid gzip message: ${(error as Error).message}`, code);
  }
}

/**
 * Runs a call whose caller and upstream speak different protocols (or codecs): re-frames the
 * request into the upstream's envelopes, and the upstream's envelopes, trailers and status into
 * the caller's protocol; with a transcoder, converts each message between JSON and binary.
 * Back-pressure both ways: a side whose writes answer false, or whose messages wait for
 * decompression, pauses the other side until it drains. Messages are assembled in linear time and
 * bounded (the policy's request limit, `maxResponseBytes` for responses); gzip runs off the event loop.
 */
export function runTranslated(options: TranslateOptions): void {
  const { down, caller, life, transcoder, custom, maxBytes, maxResponseBytes } = options;
  const gzip = "gzip";
  /** The upstream stream of the current attempt (a retry replaces it). */
  let up = options.up;
  let responded = false;
  const replay = createRequestReplay(options.reopen);
  const fail = (error: unknown) => life.fail(ConnectError.from(error));

  // ---- Request: caller framing → upstream envelopes, paused while the upstream cannot take more.
  let upBlocked = false;
  const requestLane = createLane(() => {
    if (!upBlocked && !life.done) down.resume();
  }, fail);
  const onUpDrain = () => {
    upBlocked = false;
    if (!requestLane.busy && !life.done) down.resume();
  };
  const upWrite = (bytes: Buffer) => {
    replay.sent(bytes);
    if (!up.write(bytes) && !upBlocked) {
      upBlocked = true;
      down.pause();
      up.once("drain", onUpDrain);
    }
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
          if (upBlocked) stream.once("drain", onUpDrain);
          attach(stream);
        });
    if (next === undefined) life.fail(error);
  };

  const toUpstream = (json: Buffer): Buffer => {
    if (custom) return Buffer.from(custom.request(json));
    if (!transcoder) return json;
    try {
      const message = fromJsonString(transcoder.input, json.toString("utf8"), { registry: transcoder.registry });
      return Buffer.from(toBinary(transcoder.input, message));
    } catch (error) {
      throw connectError(`invalid JSON request: ${(error as Error).message}`, Code.InvalidArgument);
    }
  };
  const toCaller = (binary: Buffer): Buffer => {
    if (!transcoder) return binary;
    const message = fromBinary(transcoder.output, binary);
    return Buffer.from(toJsonString(transcoder.output, message, { registry: transcoder.registry }));
  };

  const callerEncoding =
    caller.protocol === "connect"
      ? (options.headers[caller.enveloped ? "connect-content-encoding" : "content-encoding"] as string | undefined)
      : (options.headers["grpc-encoding"] as string | undefined);
  const requestCap = Math.max(maxBytes, 1) * 4;
  /** One request message to the upstream, decompressed first when it must be read (transcoding, or a compression the upstream is not told of). */
  const sendMessage = (flags: number, data: Buffer): void | Promise<void> => {
    const compressed = (flags & 1) !== 0;
    if (!transcoder && !custom && (!compressed || callerEncoding === gzip)) {
      upWrite(envelope(flags & 1, data));
      return;
    }
    if (!compressed) {
      upWrite(envelope(0, toUpstream(data)));
      return;
    }
    return gunzipMessage(data, callerEncoding, requestCap, Code.InvalidArgument).then((plain) => {
      if (!life.done) upWrite(envelope(0, toUpstream(plain)));
    });
  };
  const endRequest = () => {
    requestLane.run(() => {
      if (!life.done) upEnd();
    });
  };

  if (caller.get) {
    requestLane.run(() => {
      const params = new URLSearchParams(options.query);
      const message = params.get("message") ?? "";
      const data = params.get("base64") === "1" ? Buffer.from(message, "base64url") : Buffer.from(message, "utf8");
      if (data.length > maxBytes) throw tooLarge(data.length, maxBytes);
      const compressed = params.get("compression");
      return sendMessage(compressed && compressed !== "identity" ? 1 : 0, data);
    });
    endRequest();
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
      requestLane.run(() => sendMessage(callerEncoding && callerEncoding !== "identity" ? 1 : 0, Buffer.concat(chunks, size)));
      endRequest();
    };
    // An empty body may have ended while the call waited for auth.
    if (down.readableEnded) onEnd();
    else down.on("end", onEnd);
  } else {
    const decode = caller.text ? createBase64Decoder() : undefined;
    const reader = createEnvelopeReader(maxBytes, (flags, data) => requestLane.run(() => sendMessage(flags, data)));
    down.on("data", (chunk: Buffer) => {
      if (life.done) return;
      try {
        if (!reader.push(decode ? decode(chunk) : chunk)) return life.fail(tooLarge(reader.declared, maxBytes));
      } catch (error) {
        return fail(error);
      }
      if (requestLane.busy) down.pause();
    });
    const onEnd = () => {
      if (!life.done) endRequest();
    };
    if (down.readableEnded) onEnd();
    else down.on("end", onEnd);
  }

  // ---- Response: upstream envelopes, trailers and status → caller protocol, paused while the caller cannot take more.
  const writer = custom ? custom.writer(down) : createCallerWriter(down, caller, life);
  let trailers: Record<string, string | string[] | undefined> | undefined;
  let upstreamEncoding: string | undefined;
  let ended = false;
  let downBlocked = false;
  const resumeUp = () => {
    if (!downBlocked && !responseLane.busy && !life.done) up.resume();
  };
  const responseLane = createLane(resumeUp, fail);
  down.on("drain", () => {
    downBlocked = false;
    resumeUp();
  });
  const deliver = (data: Buffer) => {
    if (life.done || ended) return;
    if (!writer.message(toCaller(data))) downBlocked = true;
  };
  const end = (error: ConnectError | undefined, t: Record<string, string | string[] | undefined>) => {
    responseLane.run(() => {
      if (life.done || ended) return;
      ended = true;
      life.finish(codeName(error));
      writer.end(error, metadataOf(t));
    });
  };
  const reader = createEnvelopeReader(maxResponseBytes, (flags, data) => {
    if (life.done || ended) return;
    if ((flags & 0x80) !== 0) {
      // gRPC-Web trailer frame: read as the health check and the end-of-stream sniffer read it.
      trailers = parseTrailerBlock(data);
      return;
    }
    responseLane.run(() => {
      if ((flags & 1) === 0) return deliver(data);
      return gunzipMessage(data, upstreamEncoding, maxResponseBytes, Code.Internal).then(deliver);
    });
  });

  const attach = (stream: H2Stream) => {
    options.watch(stream, () =>
      retryOrFail(connectError(responded ? "upstream connection lost" : "upstream unavailable", Code.Unavailable)),
    );
    stream.on("response", (h: H2Headers, flags: number) => {
      if (life.done || stream !== up) return;
      const status = Number(h[":status"]);
      const contentType = String(h["content-type"] ?? "");
      const expected = options.upstream === "grpc" ? "application/grpc" : "application/grpc-web";
      if (status !== 200 || !contentType.startsWith(expected)) {
        if (status >= 500) life.upstreamFailed(`HTTP ${status}`);
        const code = status === 200 ? Code.Unknown : codeFromHttpStatus(status);
        const error = connectError(`upstream answered HTTP ${status}`, code);
        if (status === 502 || status === 503) return retryOrFail(error);
        return life.fail(error);
      }
      life.reached();
      responded = true;
      upstreamEncoding = h["grpc-encoding"] as string | undefined;
      if ((flags & h2.NGHTTP2_FLAG_END_STREAM) !== 0 || h["grpc-status"] !== undefined) {
        // Trailers-only: its one header block is the trailers (as grpc clients read it).
        const { error, metadata } = upstreamStatus(h);
        end(error, metadata);
        return;
      }
      writer.metadata(metadataOf(h));
    });
    stream.on("data", (chunk: Buffer) => {
      if (life.done || stream !== up) return;
      if (!reader.push(chunk)) {
        life.fail(
          connectError(
            `response message of ${reader.declared} bytes exceeds the limit of ${maxResponseBytes} bytes`,
            Code.ResourceExhausted,
          ),
        );
        return;
      }
      if (downBlocked || responseLane.busy) stream.pause();
    });
    stream.on("trailers", (t: H2Headers) => {
      if (stream === up) trailers = t;
    });
    stream.on("end", () => {
      if (life.done || ended || stream !== up) return;
      if (trailers === undefined || trailers["grpc-status"] === undefined) {
        end(connectError("upstream ended the call without a status", Code.Internal), {});
        return;
      }
      const { error, metadata } = upstreamStatus(trailers);
      end(error, metadata);
    });
  };
  attach(up);
}
