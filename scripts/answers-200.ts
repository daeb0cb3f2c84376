// Readiness probe of a Portico process: `GET /readyz` (or any URL) answering 200, whether the
// server speaks HTTP/1.1 (the gateway's admin port) or only h2c (the services).
import * as http from "node:http";
import * as http2 from "node:http2";

/** `GET url` over HTTP/1.1: its status, 0 when it fails. node:http, not fetch: undici costs the supervisor 11 MB resident. */
function h1Get(url: URL): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 2000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
      res.on("error", () => resolve(0));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(0));
  });
}

function h2Get(url: URL): Promise<number> {
  return new Promise((resolve) => {
    const session = http2.connect(url.origin);
    session.on("error", () => resolve(0));
    session.setTimeout(2000, () => {
      session.destroy();
      resolve(0);
    });
    const req = session.request({ ":path": url.pathname });
    req.on("response", (headers) => resolve(Number(headers[":status"])));
    req.on("error", () => resolve(0));
    req.on("close", () => session.close());
    req.resume();
    req.end();
  });
}

/** Whether `GET url` answers 200, over HTTP/1.1 or, for h2c-only servers, HTTP/2 with prior knowledge. */
export async function answers200(url: string): Promise<boolean> {
  if ((await h1Get(new URL(url))) === 200) return true;
  // maybe an h2c-only server
  return (await h2Get(new URL(url))) === 200;
}
