import type * as net from "node:net";
import * as tls from "node:tls";
import { countCopy } from "./scavenge-after-copies.js";

/**
 * One buffer every plain-TCP HTTP/2 socket of the process reads into (node's `onread`), instead of
 * node allocating a new buffer for every read and pushing it through the socket's Readable stream.
 * Reads are handed to JavaScript one at a time and parsed at once, so one buffer serves every socket;
 * at 256 KiB a 64 KiB message and its frames (W3) usually come in one read instead of two.
 *
 * The ownership rule: the bytes a callback is given are valid only until it returns; the next read
 * of any socket overwrites them. What the engine keeps (a frame cut by the end of a read, header
 * block fragments, DATA handed to a stream) it copies first (`ownedCopy`).
 */
export const sharedReadBuffer = Buffer.allocUnsafe(256 * 1024);

/** Whether `bytes` is a view of the shared read buffer (and so must be copied to be kept). */
export function isShared(bytes: Uint8Array): boolean {
  return bytes.buffer === sharedReadBuffer.buffer;
}

/** `bytes` itself when nothing else will write to it, else a copy of its own. */
export function ownedCopy(bytes: Buffer): Buffer {
  if (!isShared(bytes)) return bytes;
  countCopy(bytes.length);
  return Buffer.from(bytes);
}

/** `parts` (of `bytes` in all) joined into one buffer of its own; a single part not from the read buffer as it is. */
export function ownedJoin(parts: Buffer[], bytes: number): Buffer {
  if (parts.length === 1) return ownedCopy(parts[0] as Buffer);
  countCopy(bytes);
  return Buffer.concat(parts, bytes);
}

/**
 * Makes an accepted plain-TCP socket read into the shared buffer (as `onread` does for sockets the
 * process opens; node offers no option for a server's sockets, so this sets what that option would
 * have set). Answers false, changing nothing, for TLS sockets and wherever node's socket does not have
 * that shape: such a socket keeps its 'data' events. Bytes already read (a sniffed preface put back
 * with `unshift`) still come as 'data', before any read into the shared buffer.
 */
export function readIntoShared(socket: net.Socket, onBytes: (bytes: Buffer) => void): boolean {
  if (socket instanceof tls.TLSSocket) return false;
  const handle = (socket as unknown as { _handle?: { useUserBuffer?: (buffer: Uint8Array) => void } })._handle;
  if (handle === undefined || handle === null || typeof handle.useUserBuffer !== "function") return false;
  let bufferKey: symbol | undefined;
  let callbackKey: symbol | undefined;
  for (const key of Object.getOwnPropertySymbols(socket)) {
    if (key.description === "kBuffer") bufferKey = key;
    else if (key.description === "kBufferCb") callbackKey = key;
  }
  if (bufferKey === undefined || callbackKey === undefined) return false;
  const fields = socket as unknown as Record<symbol, unknown>;
  if (fields[bufferKey] !== null || fields[callbackKey] !== null) return false;
  fields[bufferKey] = sharedReadBuffer;
  fields[callbackKey] = (n: number, buffer: Uint8Array) => {
    onBytes((buffer as Buffer).subarray(0, n));
  };
  handle.useUserBuffer(sharedReadBuffer);
  return true;
}
