import * as net from "node:net";
import * as tls from "node:tls";
import { H2Session, type H2SessionOptions } from "./h2-session.js";

export interface H2ClientOptions extends H2SessionOptions {
  /** `http://host:port` of the peer (h2c with prior knowledge) or `https://host[:port]` (TLS, ALPN h2). */
  url: string;
  /** PEM certificates to trust for `https://` instead of Node's bundled roots. */
  ca?: string | Buffer;
  /** The address to connect to (a resolved IP) instead of the URL's host, which still names the server (TLS, `:authority`). */
  host?: string;
}

/**
 * Opens a client connection: h2c with prior knowledge for `http://`, TLS with ALPN h2 for
 * `https://` (the certificate checked against the host name). The socket connects in the
 * background; 'connect' comes once it can carry requests.
 */
export function connectH2(options: H2ClientOptions): H2Session {
  const url = new URL(options.url);
  const name = url.hostname.replace(/^\[|\]$/g, "");
  const host = options.host ?? name;
  const secure = url.protocol === "https:";
  const port = Number(url.port || (secure ? 443 : 80));
  const socket = secure
    ? tls.connect({
        host,
        port,
        servername: net.isIP(name) === 0 ? name : undefined,
        ALPNProtocols: ["h2"],
        ca: options.ca,
      })
    : net.connect({ host, port, noDelay: true });
  const session = new H2Session(socket, false, options, { authority: url.host, scheme: secure ? "https" : "http" });
  if (secure) {
    const tlsSocket = socket as tls.TLSSocket;
    tlsSocket.setNoDelay(true);
    tlsSocket.once("secureConnect", () => {
      if (tlsSocket.alpnProtocol !== "h2") {
        session.destroy(new Error(`${url.host} did not agree to HTTP/2 over TLS (ALPN ${tlsSocket.alpnProtocol || "none"})`));
        return;
      }
      session.emit("connect");
    });
  } else {
    socket.once("connect", () => session.emit("connect"));
  }
  return session;
}
