/**
 * Collects V8's young generation once the engine has copied this many bytes of DATA out of the
 * shared read buffer since the last collection it asked for.
 *
 * Those copies are ArrayBuffers whose memory comes from the C heap, and V8 frees a dead young
 * ArrayBuffer only at a scavenge, which it starts by how much *JavaScript* memory was allocated:
 * under 64 KiB messages (the bench's W3) a scavenge came every ~150 ms and ~13 MB of dead copies
 * waited for each one. glibc then keeps the high-water mark of its heap resident (it gives back
 * only the top of it), so every later workload started ~10 MB higher (bench/README.md, session 13).
 * Counting the copies bounds what waits, as V8 itself does for external memory in the old generation.
 *
 * It needs V8's gc function, which the gateway's node flags expose (`--expose-gc`, in
 * portico.services.json); without it (an embedding that does not pass the flag) it does nothing.
 * Not set up at run time with `v8.setFlagsFromString`: measured, that left the gateway slower on
 * every call afterwards.
 */
export const scavengeAfterCopiedBytes = 4 * 1024 * 1024;

/** Copies below this come from node's 8 KiB buffer pool, not from the C heap one by one. */
const smallCopy = 4096;

type MinorGc = (options: { type: "minor" }) => void;

const gc = (globalThis as { gc?: MinorGc }).gc;
let copied = 0;

/** The engine copied `bytes` out of the read buffer (one copy). */
export function countCopy(bytes: number): void {
  if (bytes < smallCopy || gc === undefined) return;
  copied += bytes;
  if (copied < scavengeAfterCopiedBytes) return;
  copied = 0;
  gc({ type: "minor" });
}
