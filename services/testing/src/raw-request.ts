import * as http2 from "node:http2";

/** One HTTP/2 request as written on the wire: for what a Connect client would not send. */
export interface RawRequest {
  path: string;
  /** Default POST. */
  method?: string;
  headers?: http2.OutgoingHttpHeaders;
  body?: Uint8Array | string;
  /** Where to send it; `TestPlatform.raw` defaults it to the gateway's public URL. */
  url?: string;
}

export interface RawResponse {
  status: number;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
}

/** One HTTP/2 request on a fresh session to `url`; resolves with status, headers, trailers and body. */
export function rawRequest(url: string, request: RawRequest): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url);
    session.on("error", reject);
    const stream = session.request({
      ":method": request.method ?? "POST",
      ":path": request.path,
      ...request.headers,
    });
    let status = 0;
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      headers = h;
    });
    stream.on("trailers", (t) => {
      trailers = t;
    });
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("error", reject);
    stream.on("close", () => {
      session.close();
      resolve({ status, headers, trailers, body: Buffer.concat(chunks) });
    });
    stream.end(request.body);
  });
}
