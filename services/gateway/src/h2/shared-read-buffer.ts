import type * as net from "node:net";
import * as tls from "node:tls";

/**
 * One buffer every plain-TCP HTTP/2 socket of the process reads into (node's `onread`), instead of
 * node allocating a new buffer for every read and pushing it through the socket's Readable stream.
 * Reads are handed to JavaScript one at a time and parsed at once, so one buffer serves every socket;
 * at 256 KiB a 64 KiB message and its frames (W3) usually come in one read instead of two.
 *
 * The ownership rule: the bytes a callback is given are valid only until it returns; the next read
 * of any socket overwrites them. What the engine keeps (a frame cut by the end of a read, header
 * block fragments, DATA waiting for a reader or for a window) it copies first (`ownedCopy`). DATA
 * a stream's reader takes at once may be lent instead (`H2Stream.lendsReads`): whoever keeps lent
 * bytes past the read copies them in an `afterRead` callback, and a session writes lent bytes before
 * the read returns (see `H2Session.flush`); a write the kernel did not take whole keeps pointing
 * into the buffer, so the buffer is then given up for a new one (`retireReadBuffer`).
 */
export const readBufferSize = 256 * 1024;
let readBuffer = Buffer.allocUnsafe(readBufferSize);

/** Whether `bytes` is a view of the shared read buffer (and so must be copied to be kept). */
export function isShared(bytes: Uint8Array): boolean {
  return bytes.buffer === readBuffer.buffer;
}

/** `bytes` itself when nothing else will write to it, else a copy of its own. */
export function ownedCopy(bytes: Buffer): Buffer {
  return isShared(bytes) ? Buffer.from(bytes) : bytes;
}

/** Replaces the views of the shared read buffer in `chunks` with copies of their own. */
export function ownAll(chunks: Buffer[]): void {
  for (let i = 0; i < chunks.length; i++) {
    const chunk = chunks[i] as Buffer;
    if (isShared(chunk)) chunks[i] = Buffer.from(chunk);
  }
}

let settlers: Array<() => void> = [];

/**
 * Runs `settle` when the current read's callback returns, before any other read: where lent bytes
 * still kept get copied (or written). Called outside a read, it runs at once.
 */
export function afterRead(settle: () => void): void {
  if (reading) settlers.push(settle);
  else settle();
}

let reading = false;

function settleRead(): void {
  while (settlers.length > 0) {
    const list = settlers;
    settlers = [];
    for (const settle of list) settle();
  }
}

/** A socket reading into the shared buffer: what `retireReadBuffer` re-points. */
interface Reader {
  readonly fields: Record<symbol, unknown>;
  readonly bufferKey: symbol;
  readonly handle: { useUserBuffer: (buffer: Uint8Array) => void };
}
const readers = new Set<Reader>();
/** Retiring costs a call per reading socket (and node keeps a small listener per call for the socket's life): at most one a second. */
const retireInterval = 1000;
let lastRetired = -Infinity;

/** Whether a session may write lent bytes now (false for a while after the buffer was given up). */
export function lendingAllowed(): boolean {
  return performance.now() - lastRetired >= retireInterval;
}

/**
 * A write still holds lent bytes after the read: from here on every socket reads into a new buffer,
 * and the old one belongs to what still points into it.
 */
export function retireReadBuffer(): void {
  lastRetired = performance.now();
  readBuffer = Buffer.allocUnsafe(readBufferSize);
  for (const reader of readers) {
    reader.fields[reader.bufferKey] = readBuffer;
    reader.handle.useUserBuffer(readBuffer);
  }
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
  const reader: Reader = { fields, bufferKey, handle: handle as Reader["handle"] };
  fields[bufferKey] = readBuffer;
  fields[callbackKey] = (n: number, buffer: Uint8Array) => {
    reading = true;
    try {
      onBytes((buffer as Buffer).subarray(0, n));
    } finally {
      reading = false;
      settleRead();
    }
  };
  handle.useUserBuffer(readBuffer);
  readers.add(reader);
  socket.once("close", () => readers.delete(reader));
  return true;
}
