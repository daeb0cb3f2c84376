import { constants as h2 } from "node:http2";
import type { H2Stream } from "../h2/index.js";
import type { Upstream, UpstreamTarget } from "../upstream.js";
import type { Attempt, Life } from "./call-life.js";

// Stage 6, retry: an idempotent unary call that met a reset, a lost connection or an HTTP 502/503
// before any response byte goes once to another address, within the upstream's retry budget. The
// request bytes to send again are kept by request-replay.ts.

/** Moves the call to a new upstream stream on another address, within the upstream's retry budget; undefined when it may not. */
export function retryAttempt(life: Life, upstream: Upstream, open: (exclude?: UpstreamTarget) => Attempt): H2Stream | undefined {
  if (!upstream.spendRetry()) return undefined;
  const failed = life.attempt;
  let next: Attempt;
  try {
    next = open(failed.target);
  } catch {
    return undefined;
  }
  if (!failed.up.closed) failed.up.close(h2.NGHTTP2_CANCEL);
  life.switchTo(next);
  return next.up;
}
