import type { ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus, errorToJson } from "@connectrpc/connect/protocol-connect";
import type { Downstream, OutgoingHttpHeaders } from "./downstream.js";
import { createBase64Encoder } from "./envelope-reader.js";
import { connectEndStream, envelope, grpcStatusTrailers, grpcWebTrailerFrame } from "./error-response.js";
import type { CallProtocol } from "./rpc-protocol.js";

/** Writes an upstream's metadata, messages and status to the caller in the caller's own protocol. */
export interface CallerWriter {
  /** The upstream's response metadata (its headers): sent in the caller's response headers, before the first message. */
  metadata(metadata: Record<string, string | string[]>): void;
  /** Writes one message; false when the caller's buffer is full (wait for its 'drain'). */
  message(data: Buffer): boolean;
  end(error: ConnectError | undefined, trailers: Record<string, string | string[]>): void;
}

/**
 * The caller's side of a translated call: `life.failure`, once set, is what a gRPC caller's trailers
 * say (the call failed after its answer started).
 */
export function createCallerWriter(
  down: Downstream,
  caller: CallProtocol,
  life: { readonly failure: ConnectError | undefined },
): CallerWriter {
  let metadata: Record<string, string | string[]> = {};
  let started = false;
  const start = (extra: OutgoingHttpHeaders = {}, options?: { endStream?: boolean; waitForTrailers?: boolean }) => {
    started = true;
    if (down.destroyed) return;
    down.respond({ ":status": 200, "content-type": caller.contentType, ...metadata, ...extra }, options);
  };
  const setMetadata = (m: Record<string, string | string[]>) => {
    metadata = m;
  };
  switch (caller.protocol) {
    case "grpc": {
      let trailers: OutgoingHttpHeaders = {};
      down.on("wantTrailers", () => down.sendTrailers(life.failure ? grpcStatusTrailers(life.failure) : trailers));
      return {
        metadata: setMetadata,
        message(data) {
          if (!started) start({}, { waitForTrailers: true });
          return down.write(envelope(0, data));
        },
        end(error, t) {
          const status = grpcStatusTrailers(error);
          trailers = { ...t, ...status };
          // As grpc does, trailers-only only without metadata: in one header block, a trailer would replace a metadata entry of its name.
          if (!started && !hasAny(metadata)) {
            start(trailers, { endStream: true });
            return;
          }
          if (!started) start({}, { waitForTrailers: true });
          down.end();
        },
      };
    }
    case "grpc-web": {
      const base64 = caller.text ? createBase64Encoder() : undefined;
      const write = (bytes: Buffer) => down.write(base64 ? base64.push(bytes) : bytes);
      return {
        metadata: setMetadata,
        message(data) {
          if (!started) start();
          return write(envelope(0, data));
        },
        end(error, t) {
          if (!started) start();
          const frame = grpcWebTrailerFrame({ ...t, ...grpcStatusTrailers(error) });
          if (base64) down.end(Buffer.concat([base64.push(frame), base64.end()]));
          else down.end(frame);
        },
      };
    }
    default: {
      if (caller.enveloped) {
        return {
          metadata: setMetadata,
          message(data) {
            if (!started) start();
            return down.write(envelope(0, data));
          },
          end(error, t) {
            if (!started) start();
            down.end(connectEndStream(error, t));
          },
        };
      }
      // Connect unary: the one message waits for the status.
      let body: Buffer | undefined;
      return {
        metadata: setMetadata,
        message(data) {
          body = body === undefined ? data : Buffer.concat([body, data]);
          return true;
        },
        end(error, t) {
          if (down.destroyed) return;
          const headers: OutgoingHttpHeaders = { ...metadata };
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

function hasAny(record: object): boolean {
  for (const _ in record) return true;
  return false;
}
