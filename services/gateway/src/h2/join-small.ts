// What one flush of a session hands to its socket.

/** A DATA payload at least this big is written as it is, never copied into a joined write. */
export const COPY_LIMIT = 1024;

/**
 * What one flush writes: runs of small buffers (frame headers, HEADERS, control frames, small
 * messages) joined into one buffer each, payloads of COPY_LIMIT bytes or more as they are. Copying
 * a large payload would cost a new ArrayBuffer of its size, and on the big-message path (W3) the
 * garbage collector's work is driven by how many bytes of ArrayBuffers are allocated.
 */
export function joinSmall(out: Buffer[], bytes: number): Buffer[] {
  let large = 0;
  for (let i = 0; i < out.length; i++) if ((out[i] as Buffer).length >= COPY_LIMIT) large++;
  if (large === 0) return [Buffer.concat(out, bytes)];
  const chunks: Buffer[] = [];
  let start = 0;
  let runBytes = 0;
  for (let i = 0; i <= out.length; i++) {
    const b = out[i];
    if (b !== undefined && b.length < COPY_LIMIT) {
      runBytes += b.length;
      continue;
    }
    if (i - start === 1) chunks.push(out[start] as Buffer);
    else if (i - start > 1) chunks.push(Buffer.concat(out.slice(start, i), runBytes));
    if (b !== undefined) chunks.push(b);
    start = i + 1;
    runBytes = 0;
  }
  return chunks;
}
