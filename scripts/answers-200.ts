// Readiness probe of a Portico process: `GET /readyz` (or any URL) answering 200, whether the
// server speaks HTTP/1.1 (the gateway's admin port) or only h2c (the services).
import * as http2 from "node:http2";

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
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    if (res.status === 200) return true;
  } catch {
    // maybe an h2c-only server
  }
  return (await h2Get(new URL(url))) === 200;
}
