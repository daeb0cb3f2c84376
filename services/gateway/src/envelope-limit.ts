import type { Code } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { parseTrailerBlock } from "./trailer-block.js";

/**
 * Watches the 5-byte length prefixes of an enveloped body as it streams past, without buffering,
 * and reports the first message that declares more than `maxBytes`.
 */
export interface EnvelopeLimit {
  /** Scans a chunk; false when a message in it declares more than the limit. */
  push(chunk: Uint8Array): boolean;
  /** The declared size of the offending message, after `push` returned false. */
  readonly declared: number;
}

export function createEnvelopeLimit(maxBytes: number): EnvelopeLimit {
  // Bytes of the current message body still to skip; -1..-5: reading the prefix (byte index = -n-1).
  let remaining = 0;
  let headerPos = 0;
  let length = 0;
  let declared = 0;
  return {
    push(chunk) {
      let i = 0;
      const n = chunk.length;
      while (i < n) {
        if (remaining > 0) {
          const skip = Math.min(remaining, n - i);
          remaining -= skip;
          i += skip;
          continue;
        }
        // Prefix byte 0 is the flags; bytes 1..4 the big-endian length.
        if (headerPos > 0) length = length * 256 + (chunk[i] as number);
        headerPos++;
        i++;
        if (headerPos === 5) {
          if (length > maxBytes) {
            declared = length;
            return false;
          }
          remaining = length;
          headerPos = 0;
          length = 0;
        }
      }
      return true;
    },
    get declared() {
      return declared;
    },
  };
}

/**
 * Watches a response's envelopes as they pass and keeps the end-of-stream one (Connect flag 0x02,
 * gRPC-Web trailer frame 0x80), so the call's status is known without buffering messages.
 */
export interface EndOfStreamSniffer {
  push(chunk: Uint8Array): void;
  /** The status code name the stream ended with ("ok" when it carried no error), or undefined. */
  code(): string | undefined;
}

const connectEnd = 0x02;
const grpcWebTrailer = 0x80;

export function createEndOfStreamSniffer(protocol: "connect" | "grpc-web"): EndOfStreamSniffer {
  let remaining = 0;
  let headerPos = 0;
  let flags = 0;
  let length = 0;
  let capture: Buffer | undefined;
  let captured = 0;
  let last: Buffer | undefined;
  return {
    push(chunk) {
      let i = 0;
      const n = chunk.length;
      while (i < n) {
        if (remaining > 0) {
          const take = Math.min(remaining, n - i);
          if (capture !== undefined) {
            const room = Math.min(take, capture.length - captured);
            capture.set(chunk.subarray(i, i + room), captured);
            captured += room;
          }
          remaining -= take;
          i += take;
          if (remaining === 0 && capture !== undefined) {
            last = capture.subarray(0, captured);
            capture = undefined;
          }
          continue;
        }
        if (headerPos === 0) flags = chunk[i] as number;
        else length = length * 256 + (chunk[i] as number);
        headerPos++;
        i++;
        if (headerPos === 5) {
          remaining = length;
          const end = (flags & (protocol === "connect" ? connectEnd : grpcWebTrailer)) !== 0;
          if (end) {
            capture = Buffer.allocUnsafe(Math.min(length, 65_536));
            captured = 0;
            if (length === 0) {
              last = Buffer.alloc(0);
              capture = undefined;
            }
          }
          headerPos = 0;
          length = 0;
        }
      }
    },
    code() {
      if (last === undefined) return undefined;
      if (protocol === "grpc-web") {
        // Only the grpc-status field counts, not another field whose name or value contains the
        // words (x-grpc-status, a grpc-message about a status).
        const status = parseTrailerBlock(last)["grpc-status"];
        if (status === undefined || !/^\d+$/.test(status)) return undefined;
        return status === "0" ? "ok" : codeToString(Number(status) as Code);
      }
      try {
        const code = (JSON.parse(last.toString("utf8")) as { error?: { code?: string } }).error?.code;
        return code ?? "ok";
      } catch {
        return undefined;
      }
    },
  };
}
