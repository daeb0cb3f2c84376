import { type IncomingHttpHeaders as H2Headers, constants as h2 } from "node:http2";
import { Code, type ConnectError } from "@connectrpc/connect";
import { codeFromHttpStatus } from "@connectrpc/connect/protocol-connect";
import { connectError } from "../connect-error.js";
import type { Downstream } from "../downstream.js";
import { createEndOfStreamSniffer, createEnvelopeLimit } from "../envelope-limit.js";
import { createBase64Decoder, createBase64Encoder } from "../envelope-reader.js";
import { grpcStatusTrailers } from "../error-response.js";
import type { H2Stream } from "../h2/index.js";
import { createRequestReplay } from "../request-replay.js";
import type { CallProtocol } from "../rpc-protocol.js";
import { upstreamStreamWindow } from "../upstream.js";
import { type CallRecord, codeString, tooLarge } from "./call.js";
import { type Life, watchUpstream } from "./call-life.js";

// Stage 5a, pass-through (stage 5b, translation, is ../translate.ts).

const END_STREAM = h2.NGHTTP2_FLAG_END_STREAM;
/**
 * The most of a unary answer held until the upstream ends it: half the upstream stream's window,
 * what an upstream sends without waiting for credit, so holding it never delays the answer. A 64 KiB
 * message with its envelope (W3) is just over 64 KiB: with 64 KiB it went out in two writes.
 */
const unaryHoldBytes = upstreamStreamWindow / 2;
/** The Connect code behind an HTTP status of a Connect unary response (the inverse of the protocol's table). */
const codeByHttpStatus: Record<number, string> = {
  200: "ok",
  400: "invalid_argument",
  401: "unauthenticated",
  403: "permission_denied",
  404: "not_found",
  408: "deadline_exceeded",
  409: "aborted",
  412: "failed_precondition",
  413: "resource_exhausted",
  415: "internal",
  429: "resource_exhausted",
  431: "resource_exhausted",
  499: "canceled",
  500: "internal",
  501: "unimplemented",
  502: "unavailable",
  503: "unavailable",
  504: "deadline_exceeded",
};

/** Whether an upstream response is a valid answer in the caller's protocol, or an error to report instead. */
function checkUpstreamResponse(
  protocol: CallProtocol,
  status: number,
  contentType: string | undefined,
): ConnectError | undefined {
  const ct = contentType ?? "";
  if (protocol.protocol === "grpc" || protocol.protocol === "grpc-web") {
    const prefix = protocol.protocol === "grpc" ? "application/grpc" : "application/grpc-web";
    if (status === 200 && ct.startsWith(prefix)) return undefined;
    // https://github.com/grpc/grpc/blob/master/doc/http-grpc-status-mapping.md
    const code = codeFromHttpStatus(status);
    return connectError(`upstream answered HTTP ${status}`, status === 200 ? Code.Unknown : code);
  }
  if (ct.startsWith("application/json")) return undefined;
  if (status === 200 && ct.startsWith(protocol.enveloped ? "application/connect+" : "application/")) return undefined;
  return connectError(`upstream answered HTTP ${status}`, status === 200 ? Code.Unknown : codeFromHttpStatus(status));
}

/**
 * Same protocol on both sides: bodies pass untouched (gRPC-Web text only changes base64). With
 * `reopen`, a call that failed before any response byte is retried once on another address.
 * A unary answer (up to `unaryHoldBytes`) goes to the caller in one piece when the upstream ended
 * it: upstreams often send the end of stream in a packet of its own, and forwarding each piece
 * at once would cost the caller's connection a second write per call.
 */
export function runPassThrough(
  down: Downstream,
  life: Life,
  protocol: CallProtocol,
  maxBytes: number,
  record: CallRecord,
  unary: boolean,
  reopen: (() => H2Stream | undefined) | undefined,
): void {
  let responded = false;
  let trailers: H2Headers | undefined;
  const replay = createRequestReplay(reopen);
  if (protocol.get) replay.ended();

  /** Tries another address once when nothing reached the caller yet; otherwise the call fails. */
  const retry = (error: ConnectError): void => {
    if (responded || down.headersSent || replay.retry(attach) === undefined) life.fail(error);
  };

  // Request body: untouched, with the size limit read from the length prefixes.
  if (!protocol.get) {
    const limit = protocol.enveloped ? createEnvelopeLimit(maxBytes) : undefined;
    const decode = protocol.text ? createBase64Decoder() : undefined;
    let total = 0;
    const onDrain = () => down.resume();
    down.on("data", (raw: Buffer) => {
      if (life.done) return;
      const chunk = decode === undefined ? raw : decode(raw);
      if (limit !== undefined) {
        if (!limit.push(chunk)) return life.fail(tooLarge(limit.declared, maxBytes));
      } else {
        total += chunk.length;
        if (total > maxBytes) return life.fail(tooLarge(total, maxBytes));
      }
      replay.sent(chunk);
      const up = life.attempt.up;
      if (!up.write(chunk)) {
        down.pause();
        up.once("drain", onDrain);
      }
    });
    const onEnd = () => {
      replay.ended();
      const up = life.attempt.up;
      if (!life.done && !up.closed) up.end();
    };
    // An empty body may have ended while the call waited for auth.
    if (down.readableEnded) onEnd();
    else down.on("end", onEnd);
  }

  const encode = protocol.text ? createBase64Encoder() : undefined;
  // Connect streaming and gRPC-Web carry their status in the body's last envelope.
  const sniffer =
    protocol.protocol === "grpc-web" || (protocol.protocol === "connect" && protocol.enveloped)
      ? createEndOfStreamSniffer(protocol.protocol)
      : undefined;
  const onDownDrain = () => life.attempt.up.resume();
  /** A unary answer held until the upstream ends it. */
  let held: { headers: H2Headers; chunks: Buffer[]; bytes: number } | undefined;
  const respond = (h: H2Headers) => {
    if (protocol.protocol === "grpc") {
      down.on("wantTrailers", () => {
        down.sendTrailers(life.failure ? grpcStatusTrailers(life.failure) : (trailers ?? grpcStatusTrailers(missingTrailers())));
      });
      down.respond(h, { waitForTrailers: true });
    } else {
      down.respond(h);
    }
  };
  /** The held answer grew too big to hold: from here on it streams. */
  const release = () => {
    if (held === undefined) return;
    const { headers, chunks } = held;
    held = undefined;
    respond(headers);
    let ok = true;
    for (const chunk of chunks) ok = down.write(chunk) && ok;
    if (!ok) {
      life.attempt.up.pause();
      down.once("drain", onDownDrain);
    }
  };
  const attach = (up: H2Stream) => {
    watchUpstream(life, up, () =>
      retry(connectError(responded ? "upstream connection lost" : "upstream unavailable", Code.Unavailable)),
    );
    up.on("response", (h: H2Headers, flags: number) => {
      if (life.done || life.attempt.up !== up) return;
      if (down.destroyed) {
        // The caller is gone; its 'close' is on its way.
        life.finish("canceled");
        if (!up.closed) up.close(h2.NGHTTP2_CANCEL);
        return;
      }
      const status = Number(h[":status"]);
      const error = checkUpstreamResponse(protocol, status, h["content-type"]);
      if (error !== undefined) {
        if (status >= 500) life.upstreamFailed(`HTTP ${status}`);
        if (status === 502 || status === 503) return retry(error);
        return life.fail(error);
      }
      life.reached();
      responded = true;
      if (encode !== undefined) {
        h["content-type"] = protocol.contentType;
        delete h["content-length"];
      }
      if ((flags & END_STREAM) !== 0) {
        // Trailers-only (gRPC) or an empty body.
        down.respond(h, { endStream: true });
        life.upEnded = true;
        life.finish(
          protocol.protocol === "connect" && !protocol.enveloped ? connectUnaryCode(status) : grpcCode(h["grpc-status"]),
        );
        return;
      }
      if (protocol.protocol === "connect" && !protocol.enveloped) record.code = connectUnaryCode(status);
      if (unary) held = { headers: h, chunks: [], bytes: 0 };
      else respond(h);
    });
    up.on("trailers", (t: H2Headers) => {
      trailers = t;
    });
    up.on("data", (chunk: Buffer) => {
      if (life.done || !responded) return;
      sniffer?.push(chunk);
      const out = encode === undefined ? chunk : encode.push(chunk);
      if (held !== undefined) {
        held.chunks.push(out);
        held.bytes += out.length;
        if (held.bytes <= unaryHoldBytes) return;
        release();
        return;
      }
      if (!down.write(out)) {
        up.pause();
        down.once("drain", onDownDrain);
      }
    });
    up.on("end", () => {
      if (life.done || life.attempt.up !== up) return;
      const code =
        protocol.protocol === "grpc"
          ? trailers
            ? grpcCode(trailers["grpc-status"])
            : "unknown"
          : (sniffer?.code() ?? record.code);
      // The answer first (a stream alone on its connection is written at once), the bookkeeping
      // (metrics, access log) after it.
      const tail = encode?.end();
      if (held === undefined) {
        down.end(tail);
      } else {
        // The whole unary answer at once: headers, body and end (or trailers) in one write.
        const { headers, chunks } = held;
        held = undefined;
        respond(headers);
        if (tail !== undefined && tail.length > 0) chunks.push(tail);
        const last = chunks.pop();
        for (const chunk of chunks) down.write(chunk);
        down.end(last);
      }
      life.finish(code);
    });
  };
  attach(life.attempt.up);
}

function missingTrailers(): ConnectError {
  return connectError("upstream ended the stream without status", Code.Internal);
}

function grpcCode(status: unknown): string {
  const n = Number(status ?? 2);
  return Number.isInteger(n) ? codeString(n as unknown as Code) : "unknown";
}

function connectUnaryCode(status: number): string {
  return codeByHttpStatus[status] ?? "unknown";
}
