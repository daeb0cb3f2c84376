// The Redis token buckets, in a module of their own: ioredis costs the gateway about 19 MB resident
// at rest, so start-gateway imports this only when a Redis URL is configured.
import { Code } from "@connectrpc/connect";
import type { Logger } from "@portico/kit";
import { Redis } from "ioredis";
import { connectError } from "./connect-error.js";
import type { RateLimiter } from "./rate-limiter.js";

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
        throw connectError("rate limiting is unavailable", Code.Unavailable);
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
