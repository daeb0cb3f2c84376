import { getHeapSpaceStatistics } from "node:v8";
import { describe, expect, it } from "vitest";
import { settleHeap } from "../src/settle-heap.js";

/** The young generation's committed bytes (both semi-spaces). */
const youngCommitted = () => getHeapSpaceStatistics().find((space) => space.space_name === "new_space")?.space_size ?? 0;

describe("settleHeap", () => {
  it("gives back the young generation that start-up grew, while live objects stay", async () => {
    // Start-up's shape: many objects that survive scavenges grow the young generation to its maximum.
    const kept: Array<{ i: number; name: string }> = [];
    for (let i = 0; i < 400_000; i++) kept.push({ i, name: `route-${i}` });
    const grown = youngCommitted();
    expect(grown).toBeGreaterThanOrEqual(4 * 2 ** 20);

    await settleHeap();

    expect(youngCommitted()).toBeLessThanOrEqual(2 * 2 ** 20);
    expect(kept[399_999]?.name).toBe("route-399999");
  });
});
