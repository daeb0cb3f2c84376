import { setTimeout as sleep } from "node:timers/promises";
import { getHeapStatistics } from "node:v8";
import { afterEach, describe, expect, it } from "vitest";
import { type MemoryReducer, startMemoryReducer } from "../src/memory-reducer.js";
import { MiB } from "./h2/test-peers.js";

const committed = () => getHeapStatistics().total_heap_size;

/** What a burst of calls leaves: objects that lived long enough to be promoted, then died. */
async function burstOfGarbage(): Promise<void> {
  let kept: Array<{ i: number; text: string }> | undefined = [];
  for (let i = 0; i < 600_000; i++) kept.push({ i, text: `call-${i}` });
  await sleep(10);
  expect(kept.length).toBe(600_000);
  kept = undefined;
}

/** Keeps the event loop busy (~90 % of the time) for `ms`. */
async function busyFor(ms: number): Promise<void> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const slice = performance.now() + 9;
    while (performance.now() < slice) {}
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe("startMemoryReducer", () => {
  let reducer: MemoryReducer | undefined;
  afterEach(() => reducer?.close());

  it("gives back what a burst grew once the process is idle", async () => {
    const reduced: Array<[number, number]> = [];
    reducer = startMemoryReducer({
      checkIntervalMs: 100,
      minGrowthBytes: 8 * MiB,
      minIntervalMs: 0,
      onReduced: (before, after) => reduced.push([before, after]),
    });
    await burstOfGarbage();
    const grown = committed();
    await sleep(600);
    expect(reducer.reductions).toBeGreaterThanOrEqual(1);
    // The burst's garbage and the pages it took are gone.
    expect(committed()).toBeLessThan(grown - 8 * MiB);
    expect(reduced[0]?.[1]).toBeLessThan((reduced[0]?.[0] ?? 0) - 8 * MiB);
  });

  it("never pauses a busy process, and reduces once it goes idle", async () => {
    reducer = startMemoryReducer({ checkIntervalMs: 100, minGrowthBytes: 8 * MiB, minIntervalMs: 0 });
    await burstOfGarbage();
    await busyFor(1_000);
    expect(reducer.reductions).toBe(0);
    await sleep(400);
    expect(reducer.reductions).toBeGreaterThanOrEqual(1);
  });

  it("leaves a heap that did not grow alone", async () => {
    reducer = startMemoryReducer({ checkIntervalMs: 50, minGrowthBytes: 64 * MiB, minIntervalMs: 0 });
    await sleep(400);
    expect(reducer.reductions).toBe(0);
  });

  it("refuses options that cannot work", () => {
    expect(() => startMemoryReducer({ maxUtilization: 0 })).toThrow(/maxUtilization 0 is not in \(0, 1\]/);
    expect(() => startMemoryReducer({ checkIntervalMs: 0 })).toThrow(RangeError);
  });
});
