import { existsSync, statSync } from "node:fs";
import { type FileHandle, open, stat } from "node:fs/promises";
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

/** Chunk size of a file read from disk: at most this much of one file is in memory per call. */
const readChunkBytes = 64 * 1024;

/**
 * Streams an open file to the caller, one chunk at a time and only as fast as the caller reads:
 * the next read waits for 'drain' when a write answers false. Closes the file when done.
 */
function stream(down: Downstream, file: FileHandle, size: number): void {
  let position = 0;
  let closed = false;
  const finish = () => {
    if (closed) return;
    closed = true;
    void file.close().catch(() => {});
  };
  down.once("close", finish);
  const next = (): void => {
    if (closed || down.destroyed) {
      finish();
      return;
    }
    if (position >= size) {
      down.end();
      finish();
      return;
    }
    const buffer = Buffer.allocUnsafe(Math.min(readChunkBytes, size - position));
    file.read(buffer, 0, buffer.length, position).then(
      ({ bytesRead }) => {
        if (closed || down.destroyed) {
          finish();
          return;
        }
        if (bytesRead === 0) {
          // The file shrank since its size was read: the promised length cannot be kept.
          down.close();
          finish();
          return;
        }
        position += bytesRead;
        if (down.write(bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead))) next();
        else down.once("drain", next);
      },
      () => {
        down.close();
        finish();
      },
    );
  };
  next();
}

/**
 * Serves the built web app from `root` for GET and HEAD: the file when it exists, otherwise
 * `index.html` for paths without an extension (client-side routes), otherwise 404. Files are
 * streamed from disk with back-pressure, never read whole. Undefined when `root` is not a directory.
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
    // The request has no body worth reading.
    down.resume();
    void (async () => {
      let target = file;
      const info = await stat(target).catch(() => undefined);
      if (info?.isDirectory()) target = join(target, "index.html");
      else if (!info?.isFile()) {
        if (extname(decoded) !== "") return send(down, 404, "text/plain; charset=utf-8", notFound, head, "no-store");
        target = index;
      }
      const handle = await open(target, "r").catch(() => undefined);
      if (handle === undefined) return send(down, 404, "text/plain; charset=utf-8", notFound, head, "no-store");
      const size = await handle.stat().then(
        (s) => (s.isFile() ? s.size : -1),
        () => -1,
      );
      if (size < 0 || down.destroyed || down.headersSent) {
        await handle.close().catch(() => {});
        if (size < 0) send(down, 404, "text/plain; charset=utf-8", notFound, head, "no-store");
        return;
      }
      const type = contentTypes[extname(target).toLowerCase()] ?? "application/octet-stream";
      const immutable = decoded.startsWith("/assets/") && target !== index;
      down.respond({
        ":status": 200,
        "content-type": type,
        "content-length": size,
        "cache-control": immutable ? "public, max-age=31536000, immutable" : "no-cache",
        "x-content-type-options": "nosniff",
      });
      if (head || size === 0) {
        down.end();
        await handle.close().catch(() => {});
        return;
      }
      stream(down, handle, size);
    })().catch(() => down.close());
    return true;
  };
}
