import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { Code, type ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus, errorToJson } from "@connectrpc/connect/protocol-connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { connectError, metadataOf } from "./connect-error.js";
import type { Downstream, OutgoingHttpHeaders } from "./downstream.js";
import type { CallProtocol } from "./rpc-protocol.js";

/** A 5-byte length-prefixed envelope: flags, big-endian length, data. */
export function envelope(flags: number, data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + data.length);
  out[0] = flags;
  out.writeUInt32BE(data.length, 1);
  out.set(data, 5);
  return out;
}

/** gRPC status trailers (`grpc-status`, `grpc-message`, `grpc-status-details-bin`) of an error, or OK. */
export function grpcStatusTrailers(error: ConnectError | undefined): Record<string, string> {
  if (error === undefined) return { "grpc-status": "0" };
  const out: Record<string, string> = {};
  // connect's setTrailerStatus writes with `set`/`append` and reads the error's metadata with
  // `forEach`: plain stand-ins for both, so that no fetch Headers is made (connect-error.ts says why).
  const metadata = metadataOf(error);
  const target = {
    // Header names as Headers keeps them: lower case (connect writes "Grpc-Status").
    set: (key: string, value: string) => {
      out[key.toLowerCase()] = value;
    },
    append: (key: string, value: string) => {
      const name = key.toLowerCase();
      out[name] = name in out ? `${out[name]}, ${value}` : value;
    },
  };
  const view = {
    code: error.code,
    rawMessage: error.rawMessage,
    details: error.details,
    metadata: {
      forEach: (each: (value: string, key: string) => void) => {
        for (const key in metadata) each(metadata[key] as string, key);
      },
    },
  };
  setTrailerStatus(target as unknown as Headers, view as unknown as ConnectError);
  return out;
}

/** The gRPC-Web trailer frame (flag 0x80) carrying `trailers`. */
export function grpcWebTrailerFrame(trailers: Record<string, string | string[] | undefined>): Buffer {
  let text = "";
  for (const key in trailers) {
    const value = trailers[key];
    if (value === undefined || key.startsWith(":")) continue;
    for (const v of Array.isArray(value) ? value : [value]) text += `${key}: ${v}\r\n`;
  }
  return envelope(0x80, Buffer.from(text, "utf8"));
}

/** The Connect end-stream message (flag 0x02) with an optional error and trailing metadata. */
export function connectEndStream(
  error: ConnectError | undefined,
  trailers?: Record<string, string | string[] | undefined>,
): Buffer {
  const json: Record<string, unknown> = {};
  if (error) json.error = errorToJson(error, undefined);
  if (trailers) {
    const metadata = Object.create(null) as Record<string, string[]>;
    for (const key in trailers) {
      const value = trailers[key];
      if (value === undefined || key.startsWith(":")) continue;
      metadata[key] = Array.isArray(value) ? value : [value];
    }
    if (Object.keys(metadata).length > 0) json.metadata = metadata;
  }
  return envelope(0x02, Buffer.from(JSON.stringify(json), "utf8"));
}

/** Metadata of an error as plain headers (for retry-after and the like). */
function metadataHeaders(error: ConnectError, into: OutgoingHttpHeaders): OutgoingHttpHeaders {
  return Object.assign(into, metadataOf(error));
}

/**
 * Answers a call the gateway ends itself, in the caller's protocol: a Connect JSON error with
 * its HTTP status, a gRPC trailers-only response, a gRPC-Web trailer frame or a Connect
 * end-stream message. Does nothing when the stream is gone.
 */
export function sendError(
  down: Downstream,
  protocol: CallProtocol,
  error: ConnectError,
  extraHeaders: OutgoingHttpHeaders = {},
): void {
  if (down.destroyed || down.writableEnded) return;
  if (down.headersSent) {
    // Headers already went out: end the body in the protocol's own way.
    endWithError(down, protocol, error);
    return;
  }
  const headers = metadataHeaders(error, extraHeaders);
  try {
    switch (protocol.protocol) {
      case "grpc":
        headers[":status"] = 200;
        headers["content-type"] = protocol.contentType;
        Object.assign(headers, grpcStatusTrailers(error));
        down.respond(headers, { endStream: true });
        return;
      case "grpc-web": {
        headers[":status"] = 200;
        headers["content-type"] = protocol.contentType;
        const frame = grpcWebTrailerFrame(grpcStatusTrailers(error));
        down.respond(headers);
        down.end(protocol.text ? Buffer.from(frame.toString("base64")) : frame);
        return;
      }
      default:
        if (protocol.enveloped) {
          headers[":status"] = 200;
          headers["content-type"] = protocol.contentType;
          down.respond(headers);
          down.end(connectEndStream(error));
          return;
        }
        headers[":status"] ??= codeToHttpStatus(error.code);
        headers["content-type"] = "application/json";
        down.respond(headers);
        down.end(Buffer.from(JSON.stringify(errorToJson(error, undefined)), "utf8"));
    }
  } catch {
    down.close();
  }
}

/**
 * Ends a response whose headers were already sent with an error: gRPC trailers (the stream must
 * have been answered with `waitForTrailers`), a gRPC-Web trailer frame, a Connect end-stream
 * message; a Connect unary body cannot carry an error, so the stream is reset.
 */
export function endWithError(down: Downstream, protocol: CallProtocol, error: ConnectError): void {
  if (down.destroyed || down.writableEnded) return;
  try {
    switch (protocol.protocol) {
      case "grpc":
        // The 'wantTrailers' handler the proxy installed sends the error's trailers.
        down.end();
        return;
      case "grpc-web": {
        const frame = grpcWebTrailerFrame(grpcStatusTrailers(error));
        down.end(protocol.text ? Buffer.from(frame.toString("base64")) : frame);
        return;
      }
      default:
        if (protocol.enveloped) {
          down.end(connectEndStream(error));
          return;
        }
        down.close(0x2 /* INTERNAL_ERROR */);
    }
  } catch {
    down.close();
  }
}

export const errors = {
  unimplemented: (path: string) => connectError(`method ${path} is not available here`, Code.Unimplemented),
  unauthenticated: (why: string) => connectError(why, Code.Unauthenticated),
  unavailable: (why: string) => connectError(why, Code.Unavailable),
};

/** `resource_exhausted` with a `google.rpc.RetryInfo` detail and a `retry-after` header (seconds). */
export function rateLimitedError(waitMs: number, what: string): ConnectError {
  // Whole milliseconds, rounded up: never sooner than the wait (a Duration's fields are integers).
  const ms = Math.max(0, Math.ceil(waitMs));
  const seconds = Math.max(1, Math.ceil(ms / 1000));
  const error = connectError(`rate limit of ${what} exceeded: retry in ${seconds} s`, Code.ResourceExhausted, {
    "retry-after": String(seconds),
  });
  // google.rpc.RetryInfo { google.protobuf.Duration retry_delay = 1 }
  const delay = new BinaryWriter()
    .tag(1, WireType.LengthDelimited)
    .fork()
    .tag(1, WireType.Varint)
    .int64(Math.floor(ms / 1000))
    .tag(2, WireType.Varint)
    .int32((ms % 1000) * 1_000_000)
    .join()
    .finish();
  error.details.push({ type: "google.rpc.RetryInfo", value: delay });
  return error;
}
