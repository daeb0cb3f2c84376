import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "@portico/kit";
import { Redis } from "ioredis";

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

// All buckets of a call in one atomic step, on the Redis server's clock: every gateway replica
// shares the same buckets. ARGV holds count and period (ms) per key.
const takeScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tokens = {}
local wait = 0
for i = 1, #KEYS do
  local cap = tonumber(ARGV[2 * i - 1])
  local period = tonumber(ARGV[2 * i])
  local v = redis.call('HMGET', KEYS[i], 't', 'ts')
  local tk = tonumber(v[1])
  local ts = tonumber(v[2])
  if tk == nil or ts == nil then tk = cap; ts = now end
  tk = math.min(cap, tk + math.max(0, now - ts) * cap / period)
  tokens[i] = tk
  if tk < 1 then
    local w = math.ceil((1 - tk) * period / cap)
    if w > wait then wait = w end
  end
end
if wait > 0 then return wait end
for i = 1, #KEYS do
  redis.call('HSET', KEYS[i], 't', tostring(tokens[i] - 1), 'ts', tostring(now))
  redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[2 * i]))
end
return 0
`;

export interface RedisRateLimiterOptions {
  url: string;
  /** When Redis cannot answer: let calls through (`open`) or refuse them `unavailable` (`closed`). */
  failure: "open" | "closed";
  logger: Logger;
  /** Prefix of every key (default "portico:rl:"). */
  keyPrefix?: string;
  /** Longest wait for Redis per call (ms, default 250). */
  commandTimeoutMs?: number;
}

type WithTake = Redis & { porticoTake(numKeys: number, ...args: (string | number)[]): Promise<number> };

/** Token buckets in Redis, shared atomically by every gateway replica (a Lua script per call). */
export function createRedisRateLimiter(options: RedisRateLimiterOptions): RateLimiter {
  const prefix = options.keyPrefix ?? "portico:rl:";
  const redis = new Redis(options.url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: options.commandTimeoutMs ?? 250,
    retryStrategy: (times) => Math.min(times * 200, 2000),
  }) as WithTake;
  redis.defineCommand("porticoTake", { lua: takeScript });
  let down = false;
  redis.on("error", (error: Error) => {
    if (!down) {
      down = true;
      options.logger.error(
        { err: error.message, failure: options.failure },
        `rate-limit store unreachable: calls ${options.failure === "open" ? "pass unlimited" : "are refused"} until it is back`,
      );
    }
  });
  redis.on("ready", () => {
    if (down) options.logger.info("rate-limit store reachable again");
    down = false;
  });
  return {
    take(buckets) {
      const args: (string | number)[] = [];
      for (const b of buckets) args.push(prefix + b.key);
      for (const b of buckets) args.push(b.count, b.periodMs);
      return redis.porticoTake(buckets.length, ...args).then(Number, (error: unknown) => {
        if (!down) {
          down = true;
          options.logger.error({ err: (error as Error).message, failure: options.failure }, "rate-limit store failed");
        }
        if (options.failure === "open") return 0;
        throw new ConnectError("rate limiting is unavailable", Code.Unavailable);
      });
    },
    ready(timeoutMs) {
      if (redis.status === "ready") return Promise.resolve(true);
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          redis.off("ready", onReady);
          resolve(false);
        }, timeoutMs);
        const onReady = () => {
          clearTimeout(timer);
          resolve(true);
        };
        redis.once("ready", onReady);
      });
    },
    async close() {
      redis.disconnect();
    },
  };
}
