import * as http2 from "node:http2";
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { codeFromHttpStatus, errorFromJsonBytes } from "@connectrpc/connect/protocol-connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { AuthService, type WatchRevocationsResponse } from "@portico/gen/portico/auth/v1/auth_pb.js";
import { decodeAuthenticateResponse, encodeAuthenticateRequest } from "@portico/kit/authenticate-codec";
import type { VerifiedToken } from "./auth-cache.js";
import { H2Error, type H2Stream } from "./h2/index.js";
import { checkHealth } from "./health-checker.js";
import type { Upstream, UpstreamTarget } from "./upstream.js";

export interface AuthClientOptions {
  /**
   * The auth service's upstream, as routed (current config): its addresses, their load, health
   * checks and ejections are the ones the proxy uses, and a reload replaces them.
   */
  upstream: () => Upstream;
  /** PEM certificates trusted for `https://` addresses instead of Node's bundled roots. */
  ca?: string | Buffer;
  /** Timeout of one Authenticate call (ms). */
  timeoutMs: number;
  /** Headers of every call to auth: the gateway's own service token (Authenticate and WatchRevocations answer only it). */
  callHeaders?: () => Record<string, string>;
}

export interface AuthClient {
  /**
   * Authenticate over a pooled HTTP/2 session, on the least loaded available address; an address
   * that cannot answer (unavailable, no answer in time) counts as failed and the call tries another
   * one once. Rejects with the auth service's ConnectError.
   */
  verify(token: string): Promise<VerifiedToken>;
  /** The WatchRevocations stream of one available address, ending when `signal` aborts. */
  watchRevocations(signal: AbortSignal): AsyncIterable<WatchRevocationsResponse>;
  /** Asks `grpc.health.v1.Health` of every auth address; true when one of them is serving. */
  healthy(timeoutMs: number): Promise<boolean>;
  close(): void;
}

const authenticatePath = `/${AuthService.typeName}/${AuthService.method.authenticate.name}`;

/** One Authenticate call as Connect unary binary: the request is a single string field, the answer an Identity. */
function authenticate(
  target: UpstreamTarget,
  token: string,
  timeoutMs: number,
  headers: Record<string, string> | undefined,
): Promise<VerifiedToken> {
  return new Promise((resolve, reject) => {
    let stream: H2Stream;
    try {
      stream = target.session().request({
        ":method": "POST",
        ":path": authenticatePath,
        ":authority": target.authority,
        "content-type": "application/proto",
        "connect-protocol-version": "1",
        "connect-timeout-ms": String(timeoutMs),
        ...headers,
      });
    } catch (error) {
      // The session closed under it: nothing went out.
      const message = (error as Error).message;
      reject(new ConnectError(message, Code.Unavailable, undefined, undefined, new StreamLost(message, 0, false)));
      return;
    }
    const timer = setTimeout(() => {
      stream.close(http2.constants.NGHTTP2_CANCEL);
      fail(new ConnectError(`no answer within ${timeoutMs} ms`, Code.DeadlineExceeded));
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
        new ConnectError(
          error.message,
          Code.Unavailable,
          undefined,
          undefined,
          new StreamLost(error.message, stream.rstCode, stream.id !== 0),
        ),
      ),
    );
    stream.on("close", () => {
      if (settled) return;
      const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      if (status !== 200) {
        let error = new ConnectError(
          `the auth service answered HTTP ${status || "nothing"}`,
          status ? codeFromHttpStatus(status) : Code.Unavailable,
        );
        try {
          error = errorFromJsonBytes(body, undefined, error);
        } catch {
          // Not a Connect error body: keep the status.
        }
        return fail(error);
      }
      let verified: VerifiedToken | undefined;
      try {
        verified = decodeAuthenticateResponse(body);
      } catch (error) {
        return fail(new ConnectError(`bad Authenticate answer: ${(error as Error).message}`, Code.Internal));
      }
      if (verified === undefined) return fail(new ConnectError("the auth service answered no identity", Code.Internal));
      settled = true;
      clearTimeout(timer);
      resolve(verified);
    });
    stream.end(encodeAuthenticateRequest(token));
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

/** One Authenticate on `target`, counted in its outstanding calls and its health. */
async function authenticateOn(
  target: UpstreamTarget,
  token: string,
  timeoutMs: number,
  headers: Record<string, string> | undefined,
): Promise<VerifiedToken> {
  target.outstanding++;
  try {
    return await authenticate(target, token, timeoutMs, headers);
  } catch (error) {
    const e = ConnectError.from(error);
    if (addressFailed(e)) target.failed(`Authenticate: ${e.rawMessage}`);
    else target.succeeded();
    throw e;
  } finally {
    target.outstanding--;
  }
}

/** The gateway's control-plane client of `portico.auth.v1.AuthService` on the routed upstream's pooled sessions. */
export function createAuthClient(options: AuthClientOptions): AuthClient {
  if (typeof options.upstream !== "function")
    throw new Error("auth client: upstream must be a function answering the auth upstream");
  // WatchRevocations is a long server stream: a connect-node client per address, made when first needed.
  const watchers = new Map<string, { manager: Http2SessionManager; client: Client<typeof AuthService> }>();
  const watcherOf = (address: string) => {
    let entry = watchers.get(address);
    if (entry === undefined) {
      const manager = new Http2SessionManager(
        address,
        { pingIntervalMs: 10_000, pingTimeoutMs: 5_000 },
        options.ca === undefined ? undefined : { ca: options.ca },
      );
      entry = { manager, client: createClient(AuthService, createGrpcTransport({ baseUrl: address, sessionManager: manager })) };
      watchers.set(address, entry);
    }
    // Addresses a reload removed are let go.
    const current = new Set(options.upstream().targets.map((t) => t.address));
    for (const [other, { manager }] of watchers) {
      if (!current.has(other) && other !== address) {
        manager.abort();
        watchers.delete(other);
      }
    }
    return entry.client;
  };
  return {
    verify(token) {
      // Authenticate is the hot control-plane call (every cache miss): a hand-rolled Connect unary
      // call over the pooled session, without a client library's per-call machinery.
      const upstream = options.upstream();
      const first = upstream.pick();
      const headers = options.callHeaders?.();
      return authenticateOn(first, token, options.timeoutMs, headers).catch((error: ConnectError) => {
        if (!addressFailed(error)) throw error;
        const second = upstream.pick(first);
        // With one address, only a call it never processed goes again (on a new connection).
        if (second === first && !neverProcessed(error)) throw error;
        return authenticateOn(second, token, options.timeoutMs, headers);
      });
    },
    watchRevocations(signal) {
      return watcherOf(options.upstream().pick().address).watchRevocations({}, { signal, headers: options.callHeaders?.() });
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
      for (const { manager } of watchers.values()) manager.abort();
      watchers.clear();
    },
  };
}
