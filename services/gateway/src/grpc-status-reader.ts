import type { IncomingHttpHeaders } from "node:http2";
import type { H2Stream } from "./h2/index.js";
import { parseTrailerBlock } from "./trailer-block.js";

/** A gRPC call's status as it arrives on an upstream stream. */
export interface GrpcStatusReader {
  /** `grpc-status` (its digits), undefined until one arrived. */
  readonly status: string | undefined;
  /** `grpc-message`, percent-decoded; empty when none arrived. */
  readonly message: string;
  /** Reads the status from a gRPC-Web trailer frame's payload (an envelope with flag 0x80). */
  readTrailerBlock(block: Uint8Array): void;
}

/**
 * Follows `stream`'s gRPC status from its response headers (a trailers-only answer) and its trailers.
 * A response other than HTTP 200 is handed to `onHttpStatus` instead: it carries no gRPC status.
 */
export function readGrpcStatus(stream: H2Stream, onHttpStatus: (status: number) => void): GrpcStatusReader {
  const reader = {
    status: undefined as string | undefined,
    message: "",
    readTrailerBlock(block: Uint8Array) {
      read(parseTrailerBlock(block));
    },
  };
  const read = (fields: IncomingHttpHeaders | Record<string, string>) => {
    const status = fields["grpc-status"];
    if (status !== undefined) reader.status = String(status);
    const message = fields["grpc-message"];
    if (typeof message === "string") reader.message = decodeGrpcMessage(message);
  };
  stream.on("response", (headers: IncomingHttpHeaders) => {
    const status = Number(headers[":status"]);
    if (status !== 200) onHttpStatus(status);
    else read(headers);
  });
  stream.on("trailers", read);
  return reader;
}

/** `grpc-message` is percent-encoded; a value that is not is taken as it stands. */
function decodeGrpcMessage(message: string): string {
  try {
    return decodeURIComponent(message);
  } catch {
    return message;
  }
}
