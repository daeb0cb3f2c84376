import type { Logger } from "@portico/kit";
import type { AuthCache } from "./auth-cache.js";
import type { AuthClient } from "./auth-client.js";

export interface RevocationWatcherOptions {
  client: AuthClient;
  cache: AuthCache;
  logger: Logger;
  /** First delay before resubscribing after the stream broke (ms, default 200), doubled up to `maxRetryMs`. */
  minRetryMs?: number;
  /** Longest delay between resubscriptions (ms, default 5000). */
  maxRetryMs?: number;
}

export interface RevocationWatcher {
  /** The stream is up (its snapshot arrived) and the cache runs with its full TTL. */
  readonly connected: boolean;
  close(): void;
}

/**
 * Subscribes to `WatchRevocations` and evicts from the auth cache at once the tokens of revoked
 * sessions and users and of withdrawn signing keys. While the stream is down the cache is degraded
 * (short TTL); on every (re)subscription the snapshot clears the cache, because revocations may have
 * been missed in between.
 */
export function startRevocationWatcher(options: RevocationWatcherOptions): RevocationWatcher {
  const { client, cache, logger } = options;
  const minRetryMs = options.minRetryMs ?? 200;
  const maxRetryMs = options.maxRetryMs ?? 5000;
  const abort = new AbortController();
  let connected = false;
  // Warn once per outage, not on every retry.
  let warned = false;
  let wake: (() => void) | undefined;

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  const run = async () => {
    let delay = minRetryMs;
    while (!abort.signal.aborted) {
      try {
        for await (const message of client.watchRevocations(abort.signal)) {
          if (message.snapshot) {
            cache.clear();
            if (!connected) logger.info("revocation stream up: auth cache at full TTL");
            warned = false;
            connected = true;
            cache.setDegraded(false);
            delay = minRetryMs;
          }
          if (message.sessionIds.length > 0) cache.evictSessions(message.sessionIds);
          if (message.userIds.length > 0) cache.evictUsers(message.userIds);
          if (message.keyIds.length > 0) cache.evictKeys(message.keyIds);
        }
        if (!abort.signal.aborted && !warned) logger.warn("revocation stream ended; resubscribing");
        warned = true;
      } catch (error) {
        if (!abort.signal.aborted && !warned) {
          logger.warn({ err: (error as Error).message }, "revocation stream failed; auth cache TTL is short until it is back");
        }
        warned = true;
      }
      connected = false;
      cache.setDegraded(true);
      if (abort.signal.aborted) break;
      await sleep(delay);
      delay = Math.min(delay * 2, maxRetryMs);
    }
  };
  void run();
  return {
    get connected() {
      return connected;
    },
    close() {
      abort.abort();
      wake?.();
    },
  };
}
