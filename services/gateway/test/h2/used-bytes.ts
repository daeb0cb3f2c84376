import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

let gc: (() => void) | undefined;

/** What the process holds after a full GC, on the V8 heap and off it (buffers): for per-object memory tests. */
export function usedBytes(): number {
  if (gc === undefined) {
    setFlagsFromString("--expose-gc");
    gc = runInNewContext("gc") as () => void;
  }
  gc();
  const { heapUsed, external } = process.memoryUsage();
  return heapUsed + external;
}
