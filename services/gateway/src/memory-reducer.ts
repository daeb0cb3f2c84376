import { performance } from "node:perf_hooks";
import { getHeapStatistics } from "node:v8";
import { settleHeap } from "./settle-heap.js";

export interface MemoryReducerOptions {
  /** How often the load and the heap are looked at (ms, default 2,000). */
  checkIntervalMs?: number;
  /** The event loop's busy share over one check interval (0–1) under which the gateway counts as idle (default 0.02: its own timers only, or a few calls a second). */
  maxUtilization?: number;
  /** Growth of V8's committed heap since the last reduction that makes the next one worth its pause (bytes, default 16 MiB). */
  minGrowthBytes?: number;
  /** Least time between two reductions (ms, default 10,000). */
  minIntervalMs?: number;
  /** Gives memory back (default: `settleHeap`, V8's low-memory collection). */
  reduce?: () => Promise<void>;
  /** Told after each reduction: V8's committed heap before and after it (bytes), and how long it took (ms). */
  onReduced?: (before: number, after: number, ms: number) => void;
}

export interface MemoryReducer {
  /** Reductions run so far. */
  readonly reductions: number;
  close(): void;
}

/**
 * Gives V8's memory back while the gateway is idle, in place of V8's own memory reducer (off:
 * `--no-memory-reducer` in portico.services.json), which collects after any quiet spell whatever it
 * gains. A full collection while no call is in flight is not free: the objects and hidden classes the
 * optimized code was built on die with their last instance, the code with them, and the next burst
 * pays re-optimizing it (services/gateway/README.md, section Run). So this collects only when it gives
 * much back.
 *
 * The gateway runs with `--heap-growing-percent=200` (portico.services.json): under load its old
 * generation may grow to three times what is live before a mark-compact, which keeps the collector
 * off the 64 KiB calls' CPU (bench/README.md, session 10). A mark-compact frees that garbage but
 * keeps most pages, and the young generation stays at its largest: after a burst of large calls or a
 * wave of closed connections the gateway held 100–125 MB resident, until the next burst reused it
 * (bench/README.md, session 17: 74–78 MB after a reduction).
 *
 * Every check interval, when the event loop was busy less than `maxUtilization` of it and V8's
 * committed heap has grown `minGrowthBytes` since the last reduction, this runs one (`settleHeap`:
 * compacting collections that also shrink the young generation; 60–80 ms here for a ~20 MB heap),
 * at most once per `minIntervalMs`. A gateway busier than that is never paused by it; when idle it
 * costs one timer per check interval.
 */
export function startMemoryReducer(options: MemoryReducerOptions = {}): MemoryReducer {
  const { checkIntervalMs = 2_000, maxUtilization = 0.02, minGrowthBytes = 16 * 1024 * 1024, minIntervalMs = 10_000 } = options;
  if (!(checkIntervalMs > 0) || !(minGrowthBytes > 0) || !(minIntervalMs >= 0)) {
    throw new RangeError("startMemoryReducer: checkIntervalMs and minGrowthBytes must be > 0, minIntervalMs ≥ 0");
  }
  if (!(maxUtilization > 0 && maxUtilization <= 1)) {
    throw new RangeError(`startMemoryReducer: maxUtilization ${maxUtilization} is not in (0, 1]`);
  }
  const reduce = options.reduce ?? settleHeap;
  const committed = () => getHeapStatistics().total_heap_size;
  let baseline = committed();
  let lastReduction = -Infinity;
  let reductions = 0;
  let running = false;
  let loop = performance.eventLoopUtilization();

  async function check(): Promise<void> {
    const now = performance.eventLoopUtilization();
    const { utilization } = performance.eventLoopUtilization(now, loop);
    loop = now;
    if (running) return;
    const size = committed();
    // V8 shrank on its own: growth counts from there.
    if (size < baseline) baseline = size;
    if (utilization >= maxUtilization || size - baseline < minGrowthBytes) return;
    if (performance.now() - lastReduction < minIntervalMs) return;
    running = true;
    const start = performance.now();
    try {
      await reduce();
    } finally {
      running = false;
    }
    reductions++;
    lastReduction = performance.now();
    baseline = committed();
    options.onReduced?.(size, baseline, lastReduction - start);
  }

  // A reduction that fails leaves the heap as it was; the next check may try again.
  const timer = setInterval(() => void check().catch(() => {}), checkIntervalMs);
  timer.unref();
  return {
    get reductions() {
      return reductions;
    },
    close() {
      clearInterval(timer);
    },
  };
}
