/**
 * Bytes the HTTP/2 engine holds for peers: data queued for writing (waiting for a flow-control
 * window or a socket that drains) plus data received but not consumed yet. One budget is shared by
 * every connection of the process (`processBufferBudget`); each connection also has its own limit.
 * Other parts of the gateway may reserve from the same process budget for what they buffer.
 */
export interface BufferBudget {
  /** The most bytes this budget lets its users hold. */
  readonly limit: number;
  /** Bytes held now. */
  readonly used: number;
  /** Holds `bytes` more; false (and nothing held) when that would go over the limit. */
  tryReserve(bytes: number): boolean;
  /** Gives back bytes a reservation held. */
  release(bytes: number): void;
}

export interface BufferBudgetOptions {
  /** The limit in bytes (a positive integer). */
  limit: number;
}

export function createBufferBudget(options: BufferBudgetOptions): BufferBudget {
  const { limit } = options;
  if (!Number.isSafeInteger(limit) || limit <= 0) {
    throw new Error(`createBufferBudget: limit must be a positive integer of bytes, got ${String(limit)}`);
  }
  let used = 0;
  return {
    limit,
    get used() {
      return used;
    },
    tryReserve(bytes) {
      if (used + bytes > limit) return false;
      used += bytes;
      return true;
    },
    release(bytes) {
      used = Math.max(0, used - bytes);
    },
  };
}

/** The process-wide budget every session uses unless its options name another: 128 MiB. */
export const processBufferBudget: BufferBudget = createBufferBudget({
  limit: 128 * 1024 * 1024,
});
