/** A bounded map that forgets the least recently used entry first, and entries past their expiry. */
export interface LruCache<V> {
  get(key: string, nowMs?: number): V | undefined;
  set(key: string, value: V, expiresAtMs: number): void;
  readonly size: number;
  clear(): void;
}

export function createLruCache<V>(maxEntries: number): LruCache<V> {
  if (!Number.isInteger(maxEntries) || maxEntries < 0) {
    throw new Error(`createLruCache: maxEntries ${maxEntries} is not valid; expected a whole number ≥ 0`);
  }
  const entries = new Map<string, { value: V; expiresAtMs: number }>();
  return {
    get(key, nowMs = Date.now()) {
      const entry = entries.get(key);
      if (entry === undefined) return undefined;
      entries.delete(key);
      if (entry.expiresAtMs <= nowMs) return undefined;
      entries.set(key, entry);
      return entry.value;
    },
    set(key, value, expiresAtMs) {
      if (maxEntries === 0) return;
      entries.delete(key);
      if (entries.size >= maxEntries) {
        const oldest = entries.keys().next().value;
        if (oldest !== undefined) entries.delete(oldest);
      }
      entries.set(key, { value, expiresAtMs });
    },
    get size() {
      return entries.size;
    },
    clear: () => entries.clear(),
  };
}
