import * as http2 from "node:http2";
import { fromBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeFromHttpStatus } from "@connectrpc/connect/protocol-connect";
import {
  AuthService,
  type WatchRevocationsResponse,
  WatchRevocationsResponseSchema,
} from "@portico/gen/portico/auth/v1/auth_pb.js";
import {
  decodeAuthenticateBatchResponse,
  decodeAuthenticateResponse,
  encodeAuthenticateBatchRequest,
  encodeAuthenticateRequest,
  maxAuthenticateBatch,
} from "@portico/kit/authenticate-codec";
import type { VerifiedToken } from "./auth-cache.js";
import { connectError, connectErrorFromJson } from "./connect-error.js";
import { createEnvelopeReader } from "./envelope-reader.js";
import { envelope } from "./error-response.js";
import { readGrpcStatus } from "./grpc-status-reader.js";
import { atTurnEnd, H2Error, type H2Stream } from "./h2/index.js";
import { checkHealth } from "./health-checker.js";
import type { Upstream, UpstreamTarget } from "./upstream.js";

export interface AuthClientOptions {
  /**
   * The auth service's upstream, as routed (current config): its addresses, their load, health
   * checks and ejections are the ones the proxy uses, and a reload replaces them.
   */
  upstream: () => Upstream;
  /** Timeout of one Authenticate call (ms). */
  timeoutMs: number;
  /**
   * WatchRevocations' keep-alive: while the stream is open, a health check on its connection once it
   * has read nothing for `intervalMs`; a connection that sends nothing within `timeoutMs` of the check
   * is destroyed, which ends the stream (default 10,000 and 5,000 ms).
   */
  watchKeepAlive?: { intervalMs: number; timeoutMs: number };
  /** Headers of every call to auth: the gateway's own service token (Authenticate and WatchRevocations answer only it). */
  callHeaders?: () => Record<string, string>;
}

export interface AuthClient {
  /**
   * Asks the auth service over a pooled HTTP/2 session, on the least loaded available address; an
   * address that cannot answer (unavailable, no answer in time) counts as failed and the call tries
   * another one once. The tokens asked in one event-loop turn go in one AuthenticateBatch call.
   * Rejects with the auth service's ConnectError.
   */
  verify(token: string): Promise<VerifiedToken>;
  /**
   * The WatchRevocations stream of one available address, ending when `signal` aborts; rejects with
   * a ConnectError when the stream fails or its connection stops answering (the keep-alive).
   */
  watchRevocations(signal: AbortSignal): AsyncIterable<WatchRevocationsResponse>;
  /** Asks `grpc.health.v1.Health` of every auth address; true when one of them is serving. */
  healthy(timeoutMs: number): Promise<boolean>;
  close(): void;
}

const authenticatePath = `/${AuthService.typeName}/${AuthService.method.authenticate.name}`;
const authenticateBatchPath = `/${AuthService.typeName}/${AuthService.method.authenticateBatch.name}`;

/**
 * One unary call as Connect binary on a pooled session of `target`: resolves with the answer's
 * message when the upstream answered 200, rejects with a ConnectError otherwise.
 */
function unaryCall(
  target: UpstreamTarget,
  path: string,
  message: Buffer,
  timeoutMs: number,
  headers: Record<string, string> | undefined,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let stream: H2Stream;
    try {
      stream = target.session().request({
        ":method": "POST",
        ":path": path,
        ":authority": target.authority,
        "content-type": "application/proto",
        "connect-protocol-version": "1",
        "connect-timeout-ms": String(timeoutMs),
        ...headers,
      });
    } catch (error) {
      // The session closed under it: nothing went out.
      const message = (error as Error).message;
      reject(connectError(message, Code.Unavailable, undefined, new StreamLost(message, 0, false)));
      return;
    }
    const timer = setTimeout(() => {
      stream.close(http2.constants.NGHTTP2_CANCEL);
      fail(connectError(`no answer within ${timeoutMs} ms`, Code.DeadlineExceeded));
    }, timeoutMs);
    let settled = false;
    const fail = (error: ConnectError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(error);
    };
    let status = 0;
    const chunks: Buffer[] = [];
    stream.on("response", (h) => {
      status = Number(h[":status"]);
    });
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", (error) =>
      fail(
        connectError(error.message, Code.Unavailable, undefined, new StreamLost(error.message, stream.rstCode, stream.id !== 0)),
      ),
    );
    stream.on("close", () => {
      if (settled) return;
      const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      if (status !== 200) {
        const error = connectErrorFromJson(
          body,
          connectError(
            `the auth service answered HTTP ${status || "nothing"}`,
            status ? codeFromHttpStatus(status) : Code.Unavailable,
          ),
        );
        return fail(error);
      }
      settled = true;
      clearTimeout(timer);
      resolve(body);
    });
    stream.end(message);
  });
}

/** One Authenticate call: the request is a single string field, the answer an Identity. */
async function authenticate(
  target: UpstreamTarget,
  token: string,
  timeoutMs: number,
  headers: Record<string, string> | undefined,
): Promise<VerifiedToken> {
  const body = await unaryCall(target, authenticatePath, encodeAuthenticateRequest(token), timeoutMs, headers);
  let verified: VerifiedToken | undefined;
  try {
    verified = decodeAuthenticateResponse(body);
  } catch (error) {
    throw connectError(`bad Authenticate answer: ${(error as Error).message}`, Code.Internal);
  }
  if (verified === undefined) throw connectError("the auth service answered no identity", Code.Internal);
  return verified;
}

/** One AuthenticateBatch call: each token's answer, or the ConnectError it was refused with, in the tokens' order. */
async function authenticateBatch(
  target: UpstreamTarget,
  tokens: readonly string[],
  timeoutMs: number,
  headers: Record<string, string> | undefined,
): Promise<(VerifiedToken | ConnectError)[]> {
  const body = await unaryCall(target, authenticateBatchPath, encodeAuthenticateBatchRequest(tokens), timeoutMs, headers);
  let results: ReturnType<typeof decodeAuthenticateBatchResponse>;
  try {
    results = decodeAuthenticateBatchResponse(body);
  } catch (error) {
    throw connectError(`bad AuthenticateBatch answer: ${(error as Error).message}`, Code.Internal);
  }
  if (results.length !== tokens.length) {
    throw connectError(`AuthenticateBatch answered ${results.length} results for ${tokens.length} tokens`, Code.Internal);
  }
  return results.map((result) => {
    if (result === undefined) return connectError("the auth service answered no identity", Code.Internal);
    if ("code" in result) return connectError(result.message, result.code in Code ? (result.code as Code) : Code.Unknown);
    return result;
  });
}

/** Why an Authenticate stream ended without an answer, in the engine's terms (the cause of its `unavailable`). */
class StreamLost extends Error {
  constructor(
    message: string,
    /** The stream's RST_STREAM code: the peer's, or REFUSED_STREAM for a stream past the last one a GOAWAY kept. */
    readonly h2Code: number,
    /** Its HEADERS went out (it had a stream id); a stream still waiting for a slot when the connection ended did not. */
    readonly sent: boolean,
  ) {
    super(message);
  }
}

/**
 * A stream the peer never processed: refused (REFUSED_STREAM, or beyond the last stream id of its
 * GOAWAY when the connection was closing), or never sent at all. Safe to send again, even to the
 * same address. Decided by the stream's code and state, never by an error's words.
 */
function neverProcessed(error: ConnectError): boolean {
  const cause = error.cause;
  return cause instanceof StreamLost && (cause.h2Code === H2Error.refusedStream || !cause.sent);
}

/** Errors that say the address did not answer (rather than the auth service refusing the token). */
function addressFailed(error: ConnectError): boolean {
  return error.code === Code.Unavailable || error.code === Code.DeadlineExceeded;
}

/** One call on `target`, counted in its outstanding calls and its health. */
async function callOn<T>(target: UpstreamTarget, what: string, call: (target: UpstreamTarget) => Promise<T>): Promise<T> {
  target.outstanding++;
  try {
    return await call(target);
  } catch (error) {
    const e = ConnectError.from(error);
    if (addressFailed(e)) target.failed(`${what}: ${e.rawMessage}`);
    else target.succeeded();
    throw e;
  } finally {
    target.outstanding--;
  }
}

/**
 * A call on the least loaded available address; an address that cannot answer (unavailable, no
 * answer in time) counts as failed and the call tries another one once.
 */
function withFailover<T>(upstream: Upstream, what: string, call: (target: UpstreamTarget) => Promise<T>): Promise<T> {
  let first: UpstreamTarget;
  try {
    first = upstream.pick();
  } catch (error) {
    // No address to ask yet (DNS, first health check).
    return Promise.reject(connectError((error as Error).message, Code.Unavailable));
  }
  return callOn(first, what, call).catch((error: ConnectError) => {
    if (!addressFailed(error)) throw error;
    const second = upstream.pick(first);
    // With one address, only a call it never processed goes again (on a new connection).
    if (second === first && !neverProcessed(error)) throw error;
    return callOn(second, what, call);
  });
}

/** A token waiting for the end of the event-loop turn, to be verified with the turn's other misses. */
interface Waiting {
  token: string;
  resolve: (verified: VerifiedToken) => void;
  reject: (error: ConnectError) => void;
}

const watchPath = `/${AuthService.typeName}/${AuthService.method.watchRevocations.name}`;
/** WatchRevocationsRequest has no fields: its one message is an empty envelope. */
const watchRequest = envelope(0, new Uint8Array(0));
/** The largest WatchRevocations message accepted (a snapshot of every revoked session and user). */
const maxWatchMessageBytes = 64 * 1024 * 1024;

/**
 * WatchRevocations as a gRPC server stream on one pooled session of `target`, by hand as
 * Authenticate is: no client library (connect's gRPC transport builds a fetch `Headers`, which
 * loads undici into the gateway: about 4 MB resident for one stream opened at start-up).
 */
async function* watchOn(
  upstream: Upstream,
  target: UpstreamTarget,
  headers: Record<string, string> | undefined,
  signal: AbortSignal,
  keepAlive: { intervalMs: number; timeoutMs: number },
): AsyncGenerator<WatchRevocationsResponse> {
  if (signal.aborted) return;
  const stream = target.session().request({
    ":method": "POST",
    ":path": watchPath,
    ":authority": target.authority,
    "content-type": "application/grpc",
    te: "trailers",
    ...headers,
  });
  const session = stream.session;
  const messages: WatchRevocationsResponse[] = [];
  let ended = false;
  let failure: ConnectError | undefined;
  let wake: (() => void) | undefined;
  const finish = (error?: ConnectError) => {
    if (ended) return;
    ended = true;
    failure = error;
    wake?.();
  };
  const reader = createEnvelopeReader(maxWatchMessageBytes, (flags, data) => {
    if (flags !== 0) return finish(connectError(`WatchRevocations: envelope flags ${flags}`, Code.Internal));
    try {
      messages.push(fromBinary(WatchRevocationsResponseSchema, data));
    } catch (error) {
      return finish(connectError(`bad WatchRevocations message: ${(error as Error).message}`, Code.Internal));
    }
    wake?.();
  });
  const grpc = readGrpcStatus(stream, (status) =>
    finish(connectError(`WatchRevocations answered HTTP ${status}`, codeFromHttpStatus(status))),
  );
  stream.on("data", (chunk: Buffer) => {
    try {
      reader.push(chunk);
    } catch (error) {
      finish(ConnectError.from(error, Code.ResourceExhausted));
    }
  });
  stream.on("error", (error) => finish(connectError(error.message, Code.Unavailable)));
  stream.on("close", () => {
    if (grpc.status === "0") return finish();
    const code = grpc.status === undefined ? Code.Unavailable : (Number(grpc.status) as Code);
    finish(connectError(grpc.message || `WatchRevocations ended without a status`, code));
  });
  const onAbort = () => {
    if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
    finish();
  };
  signal.addEventListener("abort", onAbort, { once: true });
  // The keep-alive: a connection that answers nothing (a host gone without a FIN, a dropped route)
  // would leave the stream open and the cache at its full TTL while revocations go unheard.
  let silentTimer: NodeJS.Timeout | undefined;
  const probe = setInterval(() => {
    // One check at a time: a check still waiting for its answer is not replaced by the next. And
    // none on a connection that read something within the interval (answers, the health checker's).
    const sent = Date.now();
    if (silentTimer !== undefined || sent - session.lastActive < keepAlive.intervalMs) return;
    // Its verdict does not matter, only whether the connection carries anything back (a closed one: the stream ends anyway).
    checkHealth(upstream, target, { timeoutMs: keepAlive.timeoutMs, headers: () => ({}), session }).catch(() => {});
    silentTimer = setTimeout(() => {
      silentTimer = undefined;
      // Anything read since the check went out (its answer, a revocation) shows the connection lives.
      if (!ended && session.lastActive < sent) {
        session.destroy(new Error(`the auth connection answered nothing within ${keepAlive.timeoutMs} ms`));
      }
    }, keepAlive.timeoutMs).unref();
  }, keepAlive.intervalMs).unref();
  stream.end(watchRequest);
  try {
    for (;;) {
      while (messages.length > 0) yield messages.shift() as WatchRevocationsResponse;
      if (ended) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = undefined;
    }
    if (failure !== undefined && !signal.aborted) throw failure;
  } finally {
    clearInterval(probe);
    clearTimeout(silentTimer);
    signal.removeEventListener("abort", onAbort);
    if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
  }
}

/** The gateway's control-plane client of `portico.auth.v1.AuthService` on the routed upstream's pooled sessions. */
export function createAuthClient(options: AuthClientOptions): AuthClient {
  if (typeof options.upstream !== "function")
    throw new Error("auth client: upstream must be a function answering the auth upstream");
  const keepAlive = options.watchKeepAlive ?? { intervalMs: 10_000, timeoutMs: 5_000 };

  // Authenticate is the hot control-plane call (every cache miss): hand-rolled Connect unary calls
  // over the pooled sessions, without a client library's per-call machinery. The misses of one
  // event-loop turn go in one AuthenticateBatch (up to its limits), a lone miss as Authenticate:
  // under load the auth service and the gateway handle one stream for many tokens.
  let waiting: Waiting[] = [];
  let waitingBytes = 0;
  let scheduled = false;
  const verifyOne = (token: string) => {
    const headers = options.callHeaders?.();
    return withFailover(options.upstream(), "Authenticate", (target) => authenticate(target, token, options.timeoutMs, headers));
  };
  const send = (batch: readonly Waiting[]) => {
    if (batch.length === 0) return;
    if (batch.length === 1) {
      const only = batch[0] as Waiting;
      verifyOne(only.token).then(only.resolve, only.reject);
      return;
    }
    const headers = options.callHeaders?.();
    const tokens = batch.map((w) => w.token);
    withFailover(options.upstream(), "AuthenticateBatch", (target) =>
      authenticateBatch(target, tokens, options.timeoutMs, headers),
    ).then(
      (results) => {
        for (let i = 0; i < batch.length; i++) {
          const result = results[i] as VerifiedToken | ConnectError;
          const w = batch[i] as Waiting;
          if (result instanceof ConnectError) w.reject(result);
          else w.resolve(result);
        }
      },
      (error: ConnectError) => {
        // No address could answer: every token fails as its own call would have.
        if (addressFailed(error)) {
          for (const w of batch) w.reject(error);
          return;
        }
        // Refused as a whole (an auth service without AuthenticateBatch during a rolling upgrade, a
        // batch it would not read): each token on its own, so no token fails for another's sake.
        for (const w of batch) verifyOne(w.token).then(w.resolve, w.reject);
      },
    );
  };
  const sendWaiting = () => {
    const batch = waiting;
    waiting = [];
    waitingBytes = 0;
    send(batch);
  };
  const atEndOfTurn = () => {
    scheduled = false;
    sendWaiting();
  };

  return {
    verify(token) {
      return new Promise((resolve, reject) => {
        // In UTF-8, as they go on the wire: a token is any header text, and one with bytes above 0x7f
        // must not push its batch past what auth reads (its refusal would fail the batch's other tokens).
        const bytes = Buffer.byteLength(token, "utf8");
        if (waiting.length >= maxAuthenticateBatch.tokens || waitingBytes + bytes > maxAuthenticateBatch.bytes) {
          sendWaiting();
        }
        waiting.push({ token, resolve, reject });
        waitingBytes += bytes;
        if (!scheduled) {
          scheduled = true;
          atTurnEnd(atEndOfTurn);
        }
      });
    },
    watchRevocations(signal) {
      const upstream = options.upstream();
      return watchOn(upstream, upstream.pick(), options.callHeaders?.(), signal, keepAlive);
    },
    async healthy(timeoutMs) {
      const upstream = options.upstream();
      const headers = options.callHeaders ?? (() => ({}));
      const answers = await Promise.all(
        upstream.targets.map((target) =>
          checkHealth(upstream, target, { timeoutMs, headers }).then(
            (reason) => reason === undefined,
            () => false,
          ),
        ),
      );
      return answers.includes(true);
    },
    close() {
      // Nothing of its own: its streams run on the upstream's sessions, and WatchRevocations ends with its signal.
    },
  };
}
