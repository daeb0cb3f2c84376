import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http2";

/**
 * The caller's side of one call: the subset of `ServerHttp2Stream` the proxy uses. HTTP/2 streams
 * satisfy it as they are; HTTP/1.1 requests are adapted by `createHttp1Downstream`.
 */
export interface Downstream {
  readonly headersSent: boolean;
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
  /** The request body has ended (its 'end' may have fired before anyone listened). */
  readonly readableEnded: boolean;
  /** HTTP/2: whether the caller's window lets this stream receive DATA now (undefined: HTTP/1.1, always). */
  readonly sendWindowOpen?: boolean;
  respond: (headers: OutgoingHttpHeaders, options?: { endStream?: boolean; waitForTrailers?: boolean }) => void;
  write(chunk: Uint8Array): boolean;
  end(chunk?: Uint8Array): void;
  sendTrailers(headers: OutgoingHttpHeaders): void;
  /** Resets the stream (HTTP/2 RST_STREAM; HTTP/1.1 destroys the socket). */
  close(code?: number): void;
  pause(): unknown;
  resume(): unknown;
  on(event: "data", listener: (chunk: Buffer) => void): unknown;
  on(event: "end" | "drain" | "close" | "wantTrailers" | "aborted", listener: () => void): unknown;
  on(event: "error", listener: (error: Error) => void): unknown;
  once(event: "drain" | "close", listener: () => void): unknown;
}

/** Facts about the connection a call arrived on. */
export interface Peer {
  /** The peer IP address, without an IPv4-mapped `::ffff:` prefix. */
  readonly address: string;
  readonly encrypted: boolean;
}

export type { IncomingHttpHeaders, OutgoingHttpHeaders };
