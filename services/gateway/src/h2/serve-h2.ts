import type { IncomingHttpHeaders } from "node:http2";
import type * as net from "node:net";
import { H2Error, MAX_WINDOW } from "./frame.js";
import { H2Session, type H2SessionOptions } from "./h2-session.js";
import type { H2Stream } from "./h2-stream.js";

export interface H2ServerOptions extends H2SessionOptions {
  /** A new request stream with its headers. */
  onStream: (stream: H2Stream, headers: IncomingHttpHeaders) => void;
  /**
   * A connection preface, a frame header or a header block (HEADERS and its CONTINUATIONs) must
   * arrive within this time of its first byte, else the connection is cut (slow-loris; default 10 000 ms).
   */
  headersTimeoutMs?: number;
  /** A connection without streams this long is closed with GOAWAY (default 120 000 ms). */
  idleTimeoutMs?: number;
  /**
   * Streams the client may reset (RST_STREAM on a stream still being served: rapid reset,
   * CVE-2023-44487), or open only to have them refused (over the concurrency limit, malformed), at
   * once, refilled at `perSecond`; beyond it the connection gets GOAWAY
   * ENHANCE_YOUR_CALM (default burst 100, 10 per second; nghttp2 allows 1000 and 33 but an upstream
   * sees every reset stream as a call).
   */
  resetBudget?: { burst: number; perSecond: number };
  /**
   * SETTINGS frames the client may send at once, refilled at `perSecond` (default burst 100, 10 per
   * second); beyond it GOAWAY ENHANCE_YOUR_CALM. A SETTINGS frame may carry at most 32 entries (as nghttp2).
   */
  settingsBudget?: { burst: number; perSecond: number };
  /** CONTINUATION frames allowed after one HEADERS frame (default 16; more: GOAWAY ENHANCE_YOUR_CALM). */
  maxContinuationFrames?: number;
  /**
   * Control replies (PING and SETTINGS acks, RST_STREAM) the session may queue while the socket
   * does not drain (default 1000, as nghttp2's max_outbound_ack and Envoy's
   * max_outbound_control_frames); beyond it GOAWAY ENHANCE_YOUR_CALM and the socket closes. While the
   * socket cannot be written the session does not read it either.
   */
  maxQueuedControlFrames?: number;
  /**
   * A stream with data to send that makes no progress this long (the client keeps its window
   * shut) is reset with RST_STREAM CANCEL; a connection whose socket has not drained for this long
   * is destroyed (default 30 000 ms).
   */
  stallTimeoutMs?: number;
}

/** Server options checked once each (an options object reused for every connection is checked once). */
const validated = new WeakSet<Omit<H2ServerOptions, "onStream">>();

/**
 * Checks server options (serveH2 does on each call): throws with the name of a bad value and what
 * is allowed. Call it at start-up to fail there rather than on the first connection.
 */
export function checkH2ServerOptions(options: Omit<H2ServerOptions, "onStream">): void {
  if (validated.has(options)) return;
  const positive = (name: string, value: number | undefined) => {
    if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
      throw new Error(`serveH2: ${name} must be a positive number, got ${String(value)}`);
    }
  };
  positive("headersTimeoutMs", options.headersTimeoutMs);
  positive("idleTimeoutMs", options.idleTimeoutMs);
  positive("stallTimeoutMs", options.stallTimeoutMs);
  positive("maxContinuationFrames", options.maxContinuationFrames);
  positive("maxQueuedControlFrames", options.maxQueuedControlFrames);
  positive("maxConnectionBufferBytes", options.maxConnectionBufferBytes);
  positive("connectionWindowSize", options.connectionWindowSize);
  positive("settings.maxConcurrentStreams", options.settings?.maxConcurrentStreams);
  positive("settings.initialWindowSize", options.settings?.initialWindowSize);
  positive("settings.maxHeaderListSize", options.settings?.maxHeaderListSize);
  for (const name of ["resetBudget", "settingsBudget"] as const) {
    positive(`${name}.burst`, options[name]?.burst);
    positive(`${name}.perSecond`, options[name]?.perSecond);
  }
  if ((options.settings?.initialWindowSize ?? 0) > MAX_WINDOW) {
    throw new Error(`serveH2: settings.initialWindowSize must be at most ${MAX_WINDOW}`);
  }
  validated.add(options);
}

/** Serves HTTP/2 (h2c after the preface, or TLS with ALPN h2) on an accepted socket. */
export function serveH2(socket: net.Socket, options: H2ServerOptions): H2Session {
  checkH2ServerOptions(options);
  const session = new H2Session(socket, true, options, { onStream: options.onStream });
  watch(session, {
    headersTimeoutMs: options.headersTimeoutMs ?? 10_000,
    idleTimeoutMs: options.idleTimeoutMs ?? 120_000,
    stallTimeoutMs: options.stallTimeoutMs ?? 30_000,
  });
  return session;
}

// Header, idle and stall timeouts of server sessions, checked by one timer for all of them.
interface Limits {
  headersTimeoutMs: number;
  idleTimeoutMs: number;
  stallTimeoutMs: number;
}
/** Streams answered in full whose client does not end them are reset (NO_ERROR) after this long. */
const LINGER_MS = 2000;
const watched = new Map<H2Session, Limits>();
let sweeper: NodeJS.Timeout | undefined;
function watch(session: H2Session, limits: Limits): void {
  watched.set(session, limits);
  // `on`, not `once`: a session closes once (destroy), and `once` would keep a wrapper per connection.
  session.on("close", () => {
    watched.delete(session);
    if (watched.size === 0 && sweeper !== undefined) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  });
  sweeper ??= setInterval(sweep, 200).unref();
}
function sweep(): void {
  const now = Date.now();
  // forEach, not for…of: no entry array per session on every sweep (1,000 idle connections, 5 sweeps a second).
  watched.forEach((limits, session) => {
    sweepSession(session, limits, now);
  });
}

function sweepSession(session: H2Session, limits: Limits, now: number): void {
  if (session.headerStartedAt !== 0 && now - session.headerStartedAt > limits.headersTimeoutMs) {
    session.destroy(new Error("request headers timed out"));
    return;
  }
  if (session.blockedSince !== 0 && now - session.blockedSince > limits.stallTimeoutMs) {
    session.abuse ??= "the client stopped reading";
    session.destroy(new Error("the client stopped reading"));
    return;
  }
  if (session.stalled !== undefined && session.stalled.size > 0) {
    for (const stream of session.stalled) {
      if (now - stream.stalledSince > limits.stallTimeoutMs) stream.close(H2Error.cancel);
    }
  }
  if (session.lingering !== undefined && session.lingering.size > 0) {
    for (const [stream, since] of session.lingering) {
      if (now - since > LINGER_MS) session.endLingering(stream, H2Error.noError);
    }
  }
  if (session.streamCount === 0 && now - session.lastActive > limits.idleTimeoutMs) session.close();
}
