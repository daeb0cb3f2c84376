import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { Downstream, IncomingHttpHeaders } from "../downstream.js";

/** Serves the OpenAPI document and the interactive reference page; answers false for other paths. */
export type ApiDocs = (down: Downstream, headers: IncomingHttpHeaders, path: string) => boolean;

export interface ApiDocsOptions {
  /** The OpenAPI document, as served at `/openapi.json` (rendered once per route table). */
  document: () => Buffer;
}

const page = Buffer.from(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Portico API reference</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
`);

// validatorUrl null: Swagger UI would otherwise send the document's address to validator.swagger.io.
const init =
  Buffer.from(`window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true, validatorUrl: null });
`);

/** The swagger-ui-dist files the page loads: served from the installed package, never from a CDN. */
const assets: Record<string, string> = {
  "/docs/swagger-ui.css": "text/css; charset=utf-8",
  "/docs/swagger-ui-bundle.js": "text/javascript; charset=utf-8",
};

/**
 * `/openapi.json` and `/docs`: the reference page is Swagger UI (npm `swagger-ui-dist`), its
 * files read once from the installed package and kept in memory.
 */
export function createApiDocs(options: ApiDocsOptions): ApiDocs {
  const dist = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
  const cache = new Map<string, Buffer>();
  const send = (down: Downstream, head: boolean, type: string, body: Buffer, cacheControl: string) => {
    down.respond({
      ":status": 200,
      "content-type": type,
      "content-length": body.length,
      "cache-control": cacheControl,
      "x-content-type-options": "nosniff",
    });
    down.end(head ? undefined : body);
    down.resume();
  };
  return (down, headers, path) => {
    const head = headers[":method"] === "HEAD";
    if (path === "/openapi.json") {
      send(down, head, "application/json", options.document(), "no-cache");
      return true;
    }
    if (path === "/docs" || path === "/docs/") {
      send(down, head, "text/html; charset=utf-8", page, "no-cache");
      return true;
    }
    if (path === "/docs/init.js") {
      send(down, head, "text/javascript; charset=utf-8", init, "no-cache");
      return true;
    }
    const type = assets[path];
    if (type === undefined) return false;
    let body = cache.get(path);
    if (body === undefined) {
      body = readFileSync(join(dist, path.slice("/docs/".length)));
      cache.set(path, body);
    }
    send(down, head, type, body, "public, max-age=3600");
    return true;
  };
}
