/**
 * Gives back, once, the memory start-up needed and the running gateway does not: a full garbage
 * collection that also shrinks V8's young generation and returns its pages to the system (V8's
 * `LowMemoryNotification`, reached in-process through the inspector protocol's
 * `HeapProfiler.collectGarbage`; no port is opened).
 *
 * Loading modules and building the route table leave start-up garbage and grow the young generation
 * to its maximum (two 4 MB semi-spaces with the gateway's `--max-semi-space-size=4`): V8's memory
 * reducer, before the gateway turned it off (`--no-memory-reducer`), gave that back only when
 * allocation had been quiet for a while, 8 to 16 s after start-up, so a gateway that had just started
 * held ~75 MB resident and one 20 s later ~68 MB (bench/README.md, session 11, `mem11`). This makes
 * the first state the second at once, for a pause of about 30 ms (V8 runs two mark-compacts of the
 * ~14 MB heap here).
 *
 * Resolves when done, or at once when this node has no inspector (built `--without-inspector`).
 */
export async function settleHeap(): Promise<void> {
  let inspector: typeof import("node:inspector");
  try {
    inspector = await import("node:inspector");
  } catch {
    return;
  }
  const session = new inspector.Session();
  session.connect();
  await new Promise<void>((resolve) => session.post("HeapProfiler.collectGarbage", () => resolve()));
  // Not inside the post's callback: node 20 never returns from a disconnect made there.
  setImmediate(() => session.disconnect());
}
