/** One token bucket: `count` calls per `periodMs`, bursting up to `count`. */
export interface Bucket {
  key: string;
  count: number;
  periodMs: number;
}

export interface RateLimiter {
  /**
   * Takes a token from every bucket, all or none: 0 when the call may go, otherwise the ms until
   * it could. Synchronous in memory, a promise with Redis; rejects `unavailable` when the store
   * is down and the limiter fails closed.
   */
  take(buckets: readonly Bucket[]): number | Promise<number>;
  /** Resolves once the store is reachable, or after `timeoutMs` (then the failure mode applies). */
  ready(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

interface State {
  tokens: number;
  at: number;
}

export interface MemoryRateLimiterOptions {
  /**
   * The most buckets held (default 200 000, about 30 MB). Past it the least recently used bucket is
   * forgotten: a client rotating through addresses (IPv6) pushes out idle buckets, never the ones in
   * use, and never resets everyone's limits at once.
   */
  maxKeys?: number;
}

/** Token buckets in this process's memory (one gateway replica), a bounded LRU. */
export function createMemoryRateLimiter(options: MemoryRateLimiterOptions = {}): RateLimiter {
  const maxKeys = options.maxKeys ?? 200_000;
  if (!Number.isInteger(maxKeys) || maxKeys < 1) {
    throw new Error(`createMemoryRateLimiter: maxKeys must be a positive integer, got ${String(options.maxKeys)}`);
  }
  // A Map iterates in insertion order: re-inserting a used bucket keeps the least recently used first.
  const states = new Map<string, State>();
  const refill = (bucket: Bucket, state: State | undefined, now: number): number => {
    if (state === undefined) return bucket.count;
    return Math.min(bucket.count, state.tokens + ((now - state.at) * bucket.count) / bucket.periodMs);
  };
  /** Marks a bucket used (most recent). */
  const touch = (key: string, state: State) => {
    states.delete(key);
    states.set(key, state);
  };
  // Full buckets carry no information: drop them now and then.
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [key, state] of states) {
      if (now - state.at > 3_600_000) states.delete(key);
    }
  }, 60_000);
  sweep.unref();
  return {
    take(buckets) {
      const now = Date.now();
      let wait = 0;
      for (const bucket of buckets) {
        const state = states.get(bucket.key);
        const tokens = refill(bucket, state, now);
        if (tokens < 1) {
          wait = Math.max(wait, Math.ceil(((1 - tokens) * bucket.periodMs) / bucket.count));
          // A bucket that keeps refusing is in use: it stays.
          if (state !== undefined) touch(bucket.key, state);
        }
      }
      if (wait > 0) return wait;
      for (const bucket of buckets) {
        const state = states.get(bucket.key);
        const tokens = refill(bucket, state, now) - 1;
        if (state) {
          state.tokens = tokens;
          state.at = now;
          touch(bucket.key, state);
        } else {
          if (states.size >= maxKeys) states.delete(states.keys().next().value as string);
          states.set(bucket.key, { tokens, at: now });
        }
      }
      return 0;
    },
    ready: async () => true,
    async close() {
      clearInterval(sweep);
      states.clear();
    },
  };
}
