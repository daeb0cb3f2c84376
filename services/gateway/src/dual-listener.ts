import type * as http from "node:http";
import * as net from "node:net";
import * as tls from "node:tls";
import type { AddressAdmission } from "./address-admission.js";
import { CLIENT_PREFACE as PREFACE } from "./h2/index.js";

export interface DualListenerOptions {
  port: number;
  host: string;
  /** Takes an HTTP/2 connection (h2c after the preface, or h2 over TLS). */
  h2: (socket: net.Socket) => void;
  /** HTTP/1.1 (plain or over TLS). */
  h1: http.Server;
  /** With a certificate: TLS, and ALPN picks h2 or http/1.1. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** A connection that sends nothing recognisable within this time is dropped (ms, default 10 000). */
  firstBytesTimeoutMs?: number;
  /** Per-address budgets: a connection it does not admit is never read. */
  admission?: AddressAdmission;
}

export interface DualListener {
  readonly port: number;
  readonly address: string;
  readonly server: net.Server;
  /** Stops accepting connections; resolves once every accepted connection is closed. */
  close(): Promise<void>;
  /** Destroys every connection still open (the end of a shutdown's grace period). */
  destroyConnections(): void;
}

/**
 * One port for HTTP/1.1 and HTTP/2: without TLS it sniffs the HTTP/2 connection preface (h2c
 * with prior knowledge) and hands the socket to the matching server; with TLS, ALPN decides.
 */
export async function listenDual(options: DualListenerOptions): Promise<DualListener> {
  const timeoutMs = options.firstBytesTimeoutMs ?? 10_000;
  const sniff = (socket: net.Socket) => {
    let buffered: Buffer | undefined;
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    const handOver = (to: "h1" | "h2") => {
      clearTimeout(timer);
      socket.removeListener("data", onData);
      socket.removeListener("error", onError);
      socket.pause();
      if (buffered !== undefined) socket.unshift(buffered);
      if (to === "h2") return options.h2(socket);
      options.h1.emit("connection", socket);
      // The HTTP/1.1 server reads with a 'data' listener, which does not resume a paused socket.
      socket.resume();
    };
    const onError = () => {
      clearTimeout(timer);
      socket.destroy();
    };
    const onData = (chunk: Buffer) => {
      buffered = buffered === undefined ? chunk : Buffer.concat([buffered, chunk]);
      const n = Math.min(buffered.length, PREFACE.length);
      if (buffered.compare(PREFACE, 0, n, 0, n) !== 0) return handOver("h1");
      if (buffered.length >= PREFACE.length) handOver("h2");
    };
    socket.on("data", onData);
    socket.on("error", onError);
  };
  const server = options.tls
    ? tls.createServer(
        { cert: options.tls.cert, key: options.tls.key, ALPNProtocols: ["h2", "http/1.1"], noDelay: true },
        (socket) => {
          if (socket.alpnProtocol === "h2") options.h2(socket);
          else options.h1.emit("connection", socket);
        },
      )
    : net.createServer({ noDelay: true }, (socket) => {
        if (options.admission === undefined || options.admission.admit(socket)) sniff(socket);
      });
  server.on("tlsClientError", () => {});
  // Every accepted socket, so a shutdown can end the ones a peer keeps open (one that stopped
  // reading would keep a graceful close from ever finishing).
  const sockets = new Set<net.Socket>();
  server.on("connection", (socket: net.Socket) => {
    sockets.add(socket);
    // `on`, not `once`: a socket closes once, and `once` would keep a wrapper per connection.
    socket.on("close", () => sockets.delete(socket));
    // TLS: refused before the handshake costs anything (a plain socket was admitted above).
    if (options.tls && options.admission !== undefined) options.admission.admit(socket, false);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  // The HTTP/1.1 server never listens itself; 'listening' starts its connection tracking, which
  // enforces headersTimeout (slow-loris) and makes closeIdleConnections work.
  options.h1.emit("listening");
  const { port, address } = server.address() as net.AddressInfo;
  return {
    port,
    address,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        // Stops the HTTP/1.1 server's connection checks (it is not listening: the error is expected).
        options.h1.close(() => {});
        server.close(() => resolve());
      }),
    destroyConnections() {
      for (const socket of sockets) socket.destroy();
    },
  };
}
