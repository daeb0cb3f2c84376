/**
 * A session's open streams by id: an open-addressing hash table (linear probing, deletion by
 * backward shift) in a typed array of ids and an array of streams, instead of a `Map`.
 *
 * Why not a `Map`: a session adds and deletes one entry per call, and V8 (node 20) rebuilds a
 * `Map`'s backing table every few deletions, leaving the old table linked to its successor and
 * still holding the streams that were open then. Once an old table has been promoted to the old
 * generation, every later table and every stream they hold survive the scavenges until the next
 * mark-compact ("nepotism"): under W1 about 2.4 MB of dead calls were copied and promoted per
 * scavenge. Here a delete only clears a slot, and nothing is allocated while the table does not grow.
 */
export class StreamTable<T> {
  private ids: Int32Array;
  private slots: Array<T | undefined>;
  private mask: number;
  private count = 0;

  constructor(capacity = 8) {
    let size = 8;
    while (size < capacity * 2) size *= 2;
    this.ids = new Int32Array(size);
    this.slots = new Array<T | undefined>(size).fill(undefined);
    this.mask = size - 1;
  }

  get size(): number {
    return this.count;
  }

  /** The entry of `id` (a stream id, 1 to 2^31-1), or undefined. */
  get(id: number): T | undefined {
    const ids = this.ids;
    const mask = this.mask;
    for (let i = hash(id) & mask; ; i = (i + 1) & mask) {
      const at = ids[i] as number;
      if (at === id) return this.slots[i];
      if (at === 0) return undefined;
    }
  }

  set(id: number, value: T): void {
    if ((this.count + 1) * 2 > this.ids.length) this.grow();
    const ids = this.ids;
    const mask = this.mask;
    for (let i = hash(id) & mask; ; i = (i + 1) & mask) {
      const at = ids[i] as number;
      if (at === id) {
        this.slots[i] = value;
        return;
      }
      if (at === 0) {
        ids[i] = id;
        this.slots[i] = value;
        this.count++;
        return;
      }
    }
  }

  /** Removes `id`; answers whether it was there. */
  delete(id: number): boolean {
    const ids = this.ids;
    const slots = this.slots;
    const mask = this.mask;
    let i = hash(id) & mask;
    for (;;) {
      const at = ids[i] as number;
      if (at === 0) return false;
      if (at === id) break;
      i = (i + 1) & mask;
    }
    // Backward shift: later entries of the probe run move up into the hole, so lookups need no tombstones.
    let hole = i;
    for (let j = (i + 1) & mask; ; j = (j + 1) & mask) {
      const at = ids[j] as number;
      if (at === 0) break;
      const home = hash(at) & mask;
      // Moves up unless its home lies cyclically in (hole, j].
      if (hole <= j ? home <= hole || home > j : home <= hole && home > j) {
        ids[hole] = at;
        slots[hole] = slots[j];
        hole = j;
      }
    }
    ids[hole] = 0;
    slots[hole] = undefined;
    this.count--;
    return true;
  }

  /** The entries, in no particular order (a copy: the table may change while it is walked). */
  values(): T[] {
    const out: T[] = [];
    const ids = this.ids;
    for (let i = 0; i < ids.length; i++) if (ids[i] !== 0) out.push(this.slots[i] as T);
    return out;
  }

  private grow(): void {
    const ids = this.ids;
    const slots = this.slots;
    const size = ids.length * 2;
    this.ids = new Int32Array(size);
    this.slots = new Array<T | undefined>(size).fill(undefined);
    this.mask = size - 1;
    this.count = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i] as number;
      if (id !== 0) this.set(id, slots[i] as T);
    }
  }
}

/** Stream ids of one side share their parity and mostly rise by 2: the bits above the lowest spread them. */
function hash(id: number): number {
  return (id >>> 1) ^ (id >>> 9);
}
