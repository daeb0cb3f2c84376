// Loaded into every node process of the platform by `npm run footprint` (NODE_OPTIONS=--import): on
// SIGUSR2 it writes the process's own view of its memory (V8 heap, external, array buffers, code) to
// $PORTICO_FOOTPRINT_DIR/<pid>.json, which /proc cannot tell apart. Nothing else; no timer.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { getHeapSpaceStatistics, getHeapStatistics } from "node:v8";

const dir = process.env.PORTICO_FOOTPRINT_DIR;
if (dir) {
  process.on("SIGUSR2", () => {
    const usage = process.memoryUsage();
    const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, s.physical_space_size]));
    const heap = getHeapStatistics();
    writeFileSync(
      join(dir, `${process.pid}.json`),
      JSON.stringify({
        heapTotal: usage.heapTotal,
        heapUsed: usage.heapUsed,
        heapPhysical: heap.total_physical_size,
        external: usage.external,
        arrayBuffers: usage.arrayBuffers,
        code: (spaces.code_space ?? 0) + (spaces.code_large_object_space ?? 0),
        newSpace: spaces.new_space ?? 0,
      }),
    );
  });
}
