import type { H2Stream } from "./h2/index.js";

/** The most request bytes kept for a retry: a bigger request is not retried. */
const maxReplayBytes = 65_536;

/**
 * The request of a call that may be retried once on another address (pass-through or
 * translated alike): the bytes that went upstream, up to 64 KiB, and whether the request ended.
 */
export interface RequestReplay {
  /** Bytes sent upstream on the current attempt. */
  sent(bytes: Buffer): void;
  /** The request ended. */
  ended(): void;
  /**
   * The one retry: a new upstream stream, handed to `attach` and then sent the request again; or
   * undefined when the call may not be retried (it was already, the request was too big, or
   * `reopen` declined: retry budget, no address).
   */
  retry(attach: (next: H2Stream) => void): H2Stream | undefined;
}

const noReplay: RequestReplay = {
  sent() {},
  ended() {},
  retry: () => undefined,
};

/** A replay for `reopen` (which moves the call to a new upstream stream); none without it. */
export function createRequestReplay(reopen: (() => H2Stream | undefined) | undefined): RequestReplay {
  if (reopen === undefined) return noReplay;
  let again: (() => H2Stream | undefined) | undefined = reopen;
  let chunks: Buffer[] | undefined = [];
  let bytes = 0;
  let ended = false;
  return {
    sent(chunk) {
      if (chunks === undefined) return;
      bytes += chunk.length;
      if (bytes > maxReplayBytes) chunks = undefined;
      else chunks.push(chunk);
    },
    ended() {
      ended = true;
    },
    retry(attach) {
      const open = again;
      again = undefined;
      const next = open !== undefined && chunks !== undefined ? open() : undefined;
      if (next === undefined || chunks === undefined) return undefined;
      attach(next);
      for (const chunk of chunks) next.write(chunk);
      if (ended && !next.closed) next.end();
      return next;
    },
  };
}
