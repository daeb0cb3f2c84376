import type * as http2 from "node:http2";

/**
 * A handler on node's raw HTTP/2 stream API for one exact `:path` (query string ignored). It returns
 * `false`, without touching the stream, for a request it does not understand: that request then goes
 * on to the server's regular request handler (node's compatibility API and the RPC routes).
 * A handler that takes the stream owns it: it must answer (`stream.respond`, `stream.end`) and
 * handle the stream's `error` event.
 */
export type StreamHandler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => boolean;

type StreamListener = (
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  flags: number,
  rawHeaders: string[],
) => void;

/**
 * Puts `handlers` in front of the server's request handler: a stream whose path has a handler that
 * takes it never gets node's compatibility request/response objects (they are made by the server's
 * own `stream` listener, which http2.createServer(requestListener) installs; it is kept and called
 * for every other stream). Call it once, after the server is created with its request listener.
 */
export function routeStreams(server: http2.Http2Server, handlers: Readonly<Record<string, StreamHandler>>): void {
  const compat = server.listeners("stream") as StreamListener[];
  if (compat.length === 0) throw new Error("routeStreams: the server has no request handler to pass streams on to");
  server.removeAllListeners("stream");
  const dispatch: StreamListener = (stream, headers, flags, rawHeaders) => {
    const path = headers[":path"];
    if (typeof path === "string") {
      const query = path.indexOf("?");
      const key = query === -1 ? path : path.slice(0, query);
      if (Object.hasOwn(handlers, key) && handlers[key]?.(stream, headers) !== false) return;
    }
    for (const listener of compat) listener.call(server, stream, headers, flags, rawHeaders);
  };
  server.on("stream", dispatch);
}
