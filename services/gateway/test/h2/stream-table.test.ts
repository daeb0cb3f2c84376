import { describe, expect, it } from "vitest";
import { StreamTable } from "../../src/h2/stream-table.js";

/** A small seeded generator, so a failure can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1_664_525 + 1_013_904_223) >>> 0;
    return s / 2 ** 32;
  };
}

function expectSame(table: StreamTable<string>, reference: Map<number, string>, probes: number[]): void {
  expect(table.size).toBe(reference.size);
  expect(table.values().sort()).toEqual([...reference.values()].sort());
  for (const id of probes) expect(table.get(id)).toBe(reference.get(id));
}

describe("StreamTable (a session's open streams by id)", () => {
  it("finds, replaces and deletes entries like a Map", () => {
    const table = new StreamTable<string>();
    expect(table.get(1)).toBeUndefined();
    table.set(1, "a");
    table.set(3, "b");
    table.set(1, "c");
    expect(table.size).toBe(2);
    expect(table.get(1)).toBe("c");
    expect(table.delete(1)).toBe(true);
    expect(table.delete(1)).toBe(false);
    expect(table.get(1)).toBeUndefined();
    expect(table.get(3)).toBe("b");
    expect(table.values()).toEqual(["b"]);
  });

  it("agrees with a Map through random opens and closes, growth and colliding ids", () => {
    for (const seed of [1, 2, 3, 42, 1234]) {
      const next = random(seed);
      const table = new StreamTable<string>(2);
      const reference = new Map<number, string>();
      let nextId = 1;
      const probes: number[] = [];
      for (let step = 0; step < 6_000; step++) {
        const open = [...reference.keys()];
        if (open.length === 0 || next() < 0.52) {
          // Mostly rising odd ids, as a client opens streams; now and then one whose hash collides
          // with an open one's (same bits above the lowest, wrapped by the table's mask).
          const id = next() < 0.1 && open.length > 0 ? ((open[0] as number) + 2 ** 12 * 2) | 1 : nextId;
          nextId += 2;
          if (id > 0x7fffffff) continue;
          table.set(id, `s${id}`);
          reference.set(id, `s${id}`);
          probes.push(id);
        } else {
          const id = open[Math.floor(next() * open.length)] as number;
          expect(table.delete(id)).toBe(true);
          reference.delete(id);
        }
        if (step % 997 === 0) expectSame(table, reference, probes.slice(-200));
      }
      expectSame(table, reference, probes);
      for (const id of [...reference.keys()]) table.delete(id);
      expect(table.size).toBe(0);
      expect(table.values()).toEqual([]);
    }
  });

  it("keeps no reference to a deleted entry", () => {
    const table = new StreamTable<object>();
    const held = { stream: 1 };
    table.set(1, held);
    table.set(3, { stream: 3 });
    table.delete(1);
    // Every slot is either a live entry or empty: nothing of stream 1 stays reachable from the table.
    const slots = (table as unknown as { slots: Array<object | undefined> }).slots;
    expect(slots.filter((s) => s !== undefined)).toEqual([{ stream: 3 }]);
    expect(slots.includes(held)).toBe(false);
  });
});
