import { EventEmitter } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Downstream, IncomingHttpHeaders, OutgoingHttpHeaders } from "./downstream.js";
import { type HeaderList, toHeaderObject } from "./h2/index.js";

function withoutPseudo(headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
  const out = Object.create(null) as OutgoingHttpHeaders;
  for (const name in headers) if (name.charCodeAt(0) !== 58) out[name] = headers[name];
  return out;
}

/** Adapts an HTTP/1.1 request and response to the `Downstream` the proxy speaks (trailers via chunked encoding). */
class Http1Downstream extends EventEmitter implements Downstream {
  private trailersWanted = false;

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
  ) {
    super();
    res.on("drain", () => this.emit("drain"));
    res.on("close", () => this.emit("close"));
    res.on("error", (error) => this.emit("error", error));
    req.on("error", (error) => this.emit("error", error));
  }

  get headersSent() {
    return this.res.headersSent;
  }
  get destroyed() {
    return this.res.destroyed;
  }
  get writableEnded() {
    return this.res.writableEnded;
  }
  get readableEnded() {
    return this.req.readableEnded;
  }

  respond(headers: OutgoingHttpHeaders, options?: { endStream?: boolean; waitForTrailers?: boolean }): void {
    this.res.writeHead(Number(headers[":status"] ?? 200), withoutPseudo(headers));
    this.trailersWanted = options?.waitForTrailers === true;
    if (options?.endStream) this.res.end();
  }

  write(chunk: Uint8Array): boolean {
    return this.res.write(chunk);
  }

  end(chunk?: Uint8Array): void {
    if (chunk !== undefined) this.res.write(chunk);
    if (this.trailersWanted) {
      this.trailersWanted = false;
      this.emit("wantTrailers");
    }
    this.res.end();
  }

  sendTrailers(headers: OutgoingHttpHeaders): void {
    this.res.addTrailers(withoutPseudo(headers) as Record<string, string>);
  }

  close(): void {
    this.res.destroy();
  }

  pause(): this {
    this.req.pause();
    return this;
  }

  resume(): this {
    this.req.resume();
    return this;
  }

  // The request body's events come straight from the request, so it stays paused until read.
  // biome-ignore lint/suspicious/noExplicitAny: EventEmitter's own listener type
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    if (event === "data" || event === "end") this.req.on(event, listener);
    else super.on(event, listener);
    return this;
  }
}

/**
 * The request's headers with HTTP/2 pseudo-headers added, as the proxy expects them. Built from
 * the raw header lines, not `req.headers` (node's HTTP/1.1 parser drops a field named
 * `__proto__`), by the HTTP/2 engine's rules: no prototype, so `__proto__`, `constructor` or
 * `toString` are ordinary fields; names lowercased; duplicates joined as node joins them.
 */
export function http1Headers(req: IncomingMessage): IncomingHttpHeaders {
  const raw = req.rawHeaders;
  const list: HeaderList = [];
  for (let i = 0; i + 1 < raw.length; i += 2) list.push([raw[i] as string, raw[i + 1] as string]);
  const out = toHeaderObject(list);
  out[":method"] = req.method;
  out[":path"] = req.url;
  out[":authority"] = out.host;
  out[":scheme"] = "http";
  return out;
}

export function createHttp1Downstream(req: IncomingMessage, res: ServerResponse): Downstream {
  return new Http1Downstream(req, res);
}
