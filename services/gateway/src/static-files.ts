import { existsSync, statSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { extname, join, resolve, sep } from "node:path";
import type { Downstream, IncomingHttpHeaders } from "./downstream.js";

const contentTypes: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
  ".woff": "font/woff",
  ".woff2": "font/woff2",
  ".wasm": "application/wasm",
};

export type StaticFiles = (down: Downstream, headers: IncomingHttpHeaders, path: string) => boolean;

function send(down: Downstream, status: number, type: string, body: Buffer, head: boolean, cache: string): void {
  if (down.destroyed || down.headersSent) return;
  down.respond({
    ":status": status,
    "content-type": type,
    "content-length": body.length,
    "cache-control": cache,
    "x-content-type-options": "nosniff",
  });
  down.end(head ? undefined : body);
}

/**
 * Serves the built web app from `root` for GET and HEAD: the file when it exists, otherwise
 * `index.html` for paths without an extension (client-side routes), otherwise 404. Undefined
 * when `root` is not a directory.
 */
export function createStaticFiles(root: string): StaticFiles | undefined {
  const base = resolve(root);
  if (!existsSync(base) || !statSync(base).isDirectory()) return undefined;
  const index = join(base, "index.html");
  const notFound = Buffer.from("not found\n");
  return (down, headers, path) => {
    const head = headers[":method"] === "HEAD";
    let decoded: string;
    try {
      decoded = decodeURIComponent(path);
    } catch {
      send(down, 400, "text/plain; charset=utf-8", Buffer.from("bad path\n"), head, "no-store");
      return true;
    }
    const file = resolve(base, `.${decoded}`);
    if (decoded.includes("\0") || (file !== base && !file.startsWith(base + sep))) {
      send(down, 404, "text/plain; charset=utf-8", notFound, head, "no-store");
      return true;
    }
    void (async () => {
      let target = file;
      const info = await stat(target).catch(() => undefined);
      if (info?.isDirectory()) target = join(target, "index.html");
      else if (!info?.isFile()) {
        if (extname(decoded) !== "") return send(down, 404, "text/plain; charset=utf-8", notFound, head, "no-store");
        target = index;
      }
      const body = await readFile(target).catch(() => undefined);
      if (body === undefined) return send(down, 404, "text/plain; charset=utf-8", notFound, head, "no-store");
      const type = contentTypes[extname(target).toLowerCase()] ?? "application/octet-stream";
      const immutable = decoded.startsWith("/assets/") && target !== index;
      send(down, 200, type, body, head, immutable ? "public, max-age=31536000, immutable" : "no-cache");
    })().catch(() => down.close());
    return true;
  };
}
