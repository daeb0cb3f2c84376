import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

type Gc = (options?: { type: "minor" | "major" }) => void;
let gcFunction: Gc | undefined;

/** V8's `gc` (a full collection, or a scavenge with `{ type: "minor" }`), exposed on first use. */
export function gc(options?: { type: "minor" | "major" }): void {
  if (gcFunction === undefined) {
    setFlagsFromString("--expose-gc");
    gcFunction = runInNewContext("gc") as Gc;
  }
  gcFunction(options);
}

/** What the process holds after a full GC, on the V8 heap and off it (buffers): for per-object memory tests. */
export function usedBytes(): number {
  gc();
  const { heapUsed, external } = process.memoryUsage();
  return heapUsed + external;
}
