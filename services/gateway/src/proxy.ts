import { type IncomingHttpHeaders as H2Headers, constants as h2 } from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeFromHttpStatus, codeToString } from "@connectrpc/connect/protocol-connect";
import type { Logger } from "@portico/kit";
import type { AuthCache, AuthEntry } from "./auth-cache.js";
import type { Cors } from "./cors.js";
import { requestedTimeoutMs, setTimeoutHeader } from "./deadline.js";
import type { Downstream, IncomingHttpHeaders, OutgoingHttpHeaders, Peer } from "./downstream.js";
import { createEndOfStreamSniffer, createEnvelopeLimit } from "./envelope-limit.js";
import { createBase64Decoder, createBase64Encoder } from "./envelope-reader.js";
import { endWithError, grpcStatusTrailers, rateLimitedError, sendError } from "./error-response.js";
import { type ForwardedFor, forwardedFor, type TrustedProxies, upstreamRequestHeaders } from "./forward-headers.js";
import type { H2Stream } from "./h2/index.js";
import type { Bucket, RateLimiter } from "./rate-limiter.js";
import { createRequestReplay } from "./request-replay.js";
import type { Route, RouteTable } from "./route-table.js";
import {
  type CallProtocol,
  guessProtocol,
  protocolFromContentType,
  protocolFromGetQuery,
  supportedContentTypes,
} from "./rpc-protocol.js";
import { reflectionPaths, type ServerReflection } from "./server-reflection.js";
import { type CallLife, runTranslated, type TranslatedUpstream, translatedRequestHeaders } from "./translate.js";
import type { UpstreamTarget } from "./upstream.js";

/** The bookkeeping of one forwarded call, shared by pass-through and translation. */
interface Life extends CallLife {
  done: boolean;
  failure: ConnectError | undefined;
  /** The upstream stream ended normally (a later close is not a failure). */
  upEnded: boolean;
  /** The current attempt (a retry replaces it). */
  attempt: Attempt;
  switchTo(next: Attempt): void;
}

/** One upstream stream of a call, on one address. */
interface Attempt {
  readonly target: UpstreamTarget;
  readonly up: H2Stream;
}

/** What the proxy reports when a call ends (access log, metrics). */
export interface CallRecord {
  readonly route: Route | undefined;
  readonly path: string;
  readonly protocol: CallProtocol;
  /** The Connect code name, "ok" on success. */
  code: string;
  readonly startedAt: number;
  userId: string;
  requestId: string;
  clientIp: string;
  /** Refused by a rate limit. */
  rateLimited: boolean;
}

/** A call that passed routing and protocol checks, on its way through auth and policy. */
interface PendingCall {
  readonly down: Downstream;
  readonly headers: IncomingHttpHeaders;
  /** `:path` with its query string. */
  readonly rawPath: string;
  readonly route: Route;
  readonly protocol: CallProtocol;
  readonly forwarded: ForwardedFor;
  readonly record: CallRecord;
}

export interface ProxyOptions {
  /** The current route table (swapped on reload). */
  routes: () => RouteTable;
  auth: AuthCache;
  /** Peers whose x-forwarded-* are believed (current config). */
  trustedProxies: () => TrustedProxies;
  logger: Logger;
  /** Serves non-RPC GET requests (the web app); answers false when it has nothing. */
  staticFiles?: (down: Downstream, headers: IncomingHttpHeaders, path: string) => boolean;
  /** Called once per RPC when it ends. */
  onCallEnd?: (record: CallRecord) => void;
  /** CORS for browser origins (current config). */
  cors?: () => Cors | undefined;
  /** Server reflection for the reflection paths (rebuilt on reload). */
  reflection?: () => ServerReflection | undefined;
  /** Token buckets for the policies' per-user and per-IP rates. */
  rateLimiter?: RateLimiter;
}

export interface Proxy {
  /** Handles one request: an HTTP/2 stream or an adapted HTTP/1.1 request. */
  handle(down: Downstream, headers: IncomingHttpHeaders, peer: Peer): void;
  /** Calls in flight. */
  readonly inFlight: number;
}

const END_STREAM = h2.NGHTTP2_FLAG_END_STREAM;
const rpcPathPattern = /^\/[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)+\/[A-Za-z_][\w]*$/;
const codeString = (code: Code): string => ((code as number) === 0 ? "ok" : codeToString(code));
/** The Connect code behind an HTTP status of a Connect unary response (the inverse of the protocol's table). */
const codeByHttpStatus: Record<number, string> = {
  200: "ok",
  400: "invalid_argument",
  401: "unauthenticated",
  403: "permission_denied",
  404: "not_found",
  408: "deadline_exceeded",
  409: "aborted",
  412: "failed_precondition",
  413: "resource_exhausted",
  415: "internal",
  429: "resource_exhausted",
  431: "resource_exhausted",
  499: "canceled",
  500: "internal",
  501: "unimplemented",
  502: "unavailable",
  503: "unavailable",
  504: "deadline_exceeded",
};

function bearerToken(value: string | string[] | undefined): string | undefined {
  if (typeof value !== "string" || value.length > 8192) return undefined;
  if (value.length < 8 || !/^bearer /i.test(value)) return undefined;
  const token = value.slice(7).trim();
  return token === "" ? undefined : token;
}

/** Whether an upstream response is a valid answer in the caller's protocol, or an error to report instead. */
function checkUpstreamResponse(
  protocol: CallProtocol,
  status: number,
  contentType: string | undefined,
): ConnectError | undefined {
  const ct = contentType ?? "";
  if (protocol.protocol === "grpc" || protocol.protocol === "grpc-web") {
    const prefix = protocol.protocol === "grpc" ? "application/grpc" : "application/grpc-web";
    if (status === 200 && ct.startsWith(prefix)) return undefined;
    // https://github.com/grpc/grpc/blob/master/doc/http-grpc-status-mapping.md
    const code = codeFromHttpStatus(status);
    return new ConnectError(`upstream answered HTTP ${status}`, status === 200 ? Code.Unknown : code);
  }
  if (ct.startsWith("application/json")) return undefined;
  if (status === 200 && ct.startsWith(protocol.enveloped ? "application/connect+" : "application/")) return undefined;
  return new ConnectError(`upstream answered HTTP ${status}`, status === 200 ? Code.Unknown : codeFromHttpStatus(status));
}

/**
 * The gateway's hot path: routes on `:path`, applies the method's policy, and forwards request and
 * response bodies untouched over a pooled HTTP/2 session to the upstream.
 */
export function createProxy(options: ProxyOptions): Proxy {
  const { auth } = options;
  let inFlight = 0;
  // Retry budget: every forwarded call earns a tenth of a retry, up to ten in reserve.
  let retryTokens = 10;
  const spendRetry = () => {
    if (retryTokens < 1) return false;
    retryTokens--;
    return true;
  };

  const reject = (down: Downstream, protocol: CallProtocol, error: ConnectError, headers?: OutgoingHttpHeaders) => {
    sendError(down, protocol, error, headers);
    // Whatever the caller still sends is not wanted.
    down.resume();
  };

  function handle(down: Downstream, headers: IncomingHttpHeaders, peer: Peer): void {
    down.on("error", noop);
    const method = headers[":method"] as string;
    const rawPath = (headers[":path"] as string | undefined) ?? "/";
    const q = rawPath.indexOf("?");
    const path = q < 0 ? rawPath : rawPath.slice(0, q);
    const origin = headers.origin;
    const cors = origin === undefined ? undefined : options.cors?.();
    if (cors !== undefined) {
      if (method === "OPTIONS") {
        cors.preflight(down, headers);
        return;
      }
      cors.decorate(down, origin as string);
    }
    const route = options.routes().get(path);
    const contentType = headers["content-type"];
    if (route === undefined && method === "POST" && reflectionPaths.has(path)) {
      const reflection = options.reflection?.();
      if (reflection !== undefined) {
        reflection(down, headers);
        return;
      }
    }
    if (route === undefined) {
      if ((method === "GET" || method === "HEAD") && !rpcPathPattern.test(path) && options.staticFiles?.(down, headers, path)) {
        return;
      }
      const protocol = protocolFromContentType(contentType) ?? guessProtocol(contentType);
      reject(down, protocol, new ConnectError(`no method ${path.slice(0, 200)} is served here`, Code.Unimplemented));
      return;
    }
    let protocol: CallProtocol | undefined;
    if (method === "POST") {
      protocol = protocolFromContentType(contentType);
      if (protocol === undefined) {
        const guessed = guessProtocol(contentType);
        const message = `content-type "${String(contentType ?? "").slice(0, 100)}" is not supported: use one of ${supportedContentTypes.join(", ")}`;
        if (guessed.protocol !== "connect") {
          reject(down, guessed, new ConnectError(message, Code.InvalidArgument));
          return;
        }
        sendError(down, guessed, new ConnectError(message, Code.InvalidArgument), {
          ":status": 415,
          "accept-post": supportedContentTypes.join(", "),
        });
        down.resume();
        return;
      }
    } else if (method === "GET" && route.policy.noSideEffects && route.kind === "unary") {
      protocol = protocolFromGetQuery(q < 0 ? "" : rawPath.slice(q + 1));
    } else {
      const error = new ConnectError(
        route.policy.noSideEffects ? `use POST or GET for ${path}` : `${path} needs POST (it is not NO_SIDE_EFFECTS)`,
        Code.Unimplemented,
      );
      sendError(down, guessProtocol(contentType), error, {
        ":status": 405,
        allow: route.policy.noSideEffects ? "GET, POST" : "POST",
      });
      down.resume();
      return;
    }
    const forwarded = forwardedFor(headers, peer, options.trustedProxies());
    const record: CallRecord = {
      route,
      path,
      protocol,
      code: "ok",
      startedAt: performance.now(),
      userId: "",
      requestId: "",
      clientIp: forwarded.clientIp,
      rateLimited: false,
    };
    const call: PendingCall = { down, headers, rawPath, route, protocol, forwarded, record };
    const token = bearerToken(headers.authorization);
    if (route.policy.access === "public") {
      // A public method still learns who calls it when a valid token comes along (e.g. Logout).
      const entry = token === undefined ? undefined : auth.get(token);
      if (token === undefined || entry !== undefined) {
        limit(call, entry);
        return;
      }
      auth
        .verify(token)
        .then(
          (verified) => limit(call, verified),
          () => limit(call, undefined),
        )
        .catch((error: unknown) => internalError(call, error));
      return;
    }
    if (token === undefined) {
      const why = headers.authorization === undefined ? "missing access token" : "malformed Authorization header";
      finishRejected(call, new ConnectError(`${why}: send "Authorization: Bearer <access token>"`, Code.Unauthenticated));
      return;
    }
    const entry = auth.get(token);
    if (entry !== undefined) {
      authorized(call, entry);
      return;
    }
    auth
      .verify(token)
      .then(
        (verified) => authorized(call, verified),
        (error: unknown) => finishRejected(call, ConnectError.from(error)),
      )
      .catch((error: unknown) => internalError(call, error));
  }

  /** A bug, not a caller's fault: logged, answered `internal`, and the process keeps serving. */
  function internalError(call: PendingCall, error: unknown): void {
    options.logger.error({ err: error, method: call.route.path }, "gateway failed a call");
    if (!call.down.headersSent) finishRejected(call, new ConnectError("internal gateway error", Code.Internal));
    else call.down.close();
  }

  function finishRejected(call: PendingCall, error: ConnectError): void {
    call.record.code = codeString(error.code);
    reject(call.down, call.protocol, error);
    options.onCallEnd?.(call.record);
  }

  function authorized(call: PendingCall, entry: AuthEntry): void {
    const needed = call.route.policy.permissions;
    if (needed.length > 0) {
      const roles = entry.identity.roles;
      for (const permission of needed) {
        if (!roles.includes(permission)) {
          call.record.userId = entry.identity.userId;
          finishRejected(
            call,
            new ConnectError(`${call.route.path} needs the permission "${permission}"`, Code.PermissionDenied),
          );
          return;
        }
      }
    }
    limit(call, entry);
  }

  /** Applies the method's per-user and per-IP rates, then forwards. */
  function limit(call: PendingCall, entry: AuthEntry | undefined): void {
    const { policy, path } = call.route;
    const limiter = options.rateLimiter;
    const buckets: Bucket[] = [];
    if (limiter !== undefined) {
      if (policy.perUser !== undefined && entry !== undefined) {
        const r = policy.perUser;
        buckets.push({ key: `${path}|u|${entry.identity.userId}`, count: r.count, periodMs: r.periodSeconds * 1000 });
      }
      if (policy.perIp !== undefined) {
        const r = policy.perIp;
        buckets.push({ key: `${path}|ip|${call.forwarded.clientIp}`, count: r.count, periodMs: r.periodSeconds * 1000 });
      }
    }
    if (limiter === undefined || buckets.length === 0) {
      forward(call, entry);
      return;
    }
    const decide = (waitMs: number) => {
      if (waitMs <= 0) {
        forward(call, entry);
        return;
      }
      if (entry !== undefined) call.record.userId = entry.identity.userId;
      call.record.rateLimited = true;
      const what = buckets.map((b) =>
        b.key.includes("|u|") ? `${policy.perUser?.text} per user` : `${policy.perIp?.text} per IP`,
      );
      finishRejected(call, rateLimitedError(waitMs, what.join(" and ")));
    };
    const result = limiter.take(buckets);
    if (typeof result === "number") decide(result);
    else
      result
        .then(decide, (error: unknown) => finishRejected(call, ConnectError.from(error)))
        .catch((error: unknown) => internalError(call, error));
  }

  function forward(call: PendingCall, entry: AuthEntry | undefined): void {
    const { down, headers, route, protocol, record } = call;
    if (down.destroyed) return;
    if (entry !== undefined) record.userId = entry.identity.userId;
    const upstream = route.upstream;
    if (upstream === undefined) {
      finishRejected(call, new ConnectError("no upstream", Code.Unimplemented));
      return;
    }

    // Deadline: the caller's, capped by the policy; the policy's when the caller sets none.
    const requested = requestedTimeoutMs(headers, protocol);
    if (requested !== undefined && Number.isNaN(requested)) {
      finishRejected(call, new ConnectError("malformed timeout header", Code.InvalidArgument));
      return;
    }
    const timeoutMs = requested === undefined ? route.timeoutMs : Math.min(requested, route.timeoutMs);

    // Size: a Connect unary body by its declared length; enveloped messages by their prefixes as they pass.
    const maxBytes = route.maxRequestBytes;
    if (!protocol.enveloped && !protocol.get) {
      const declared = Number(headers["content-length"] ?? 0);
      if (declared > maxBytes) {
        finishRejected(call, tooLarge(declared, maxBytes));
        return;
      }
    }

    // Pass the caller's protocol through when the upstream speaks it; otherwise translate the framing.
    const jsonCaller = protocol.codec === "json";
    let translated: TranslatedUpstream | undefined;
    let transcode = false;
    if (upstream.protocol === "connect") {
      if (jsonCaller && !upstream.json) {
        translated = "grpc";
        transcode = true;
      }
    } else {
      transcode = jsonCaller && !upstream.json;
      if (protocol.protocol !== upstream.protocol || transcode) translated = upstream.protocol;
    }

    const q = call.rawPath.indexOf("?");
    const path = translated === undefined || q < 0 ? call.rawPath : call.rawPath.slice(0, q);
    const identity = entry === undefined ? undefined : auth.headers(entry, route.audience, call.forwarded.clientIp);
    /** Opens the upstream stream of one attempt, on the best address other than `exclude`. */
    const open = (exclude?: UpstreamTarget): Attempt => {
      const target = upstream.pick(exclude);
      const upHeaders = upstreamRequestHeaders(
        headers,
        { method: protocol.get && translated === undefined ? "GET" : "POST", path, authority: target.authority },
        call.forwarded,
        identity,
      );
      record.requestId = upHeaders["x-request-id"] as string;
      if (translated !== undefined) {
        translatedRequestHeaders(upHeaders, protocol, translated, transcode);
        setTimeoutHeader(upHeaders, "grpc", timeoutMs);
      } else {
        setTimeoutHeader(upHeaders, protocol.protocol, timeoutMs);
        if (protocol.protocol === "grpc") upHeaders.te = "trailers";
        if (protocol.text) {
          // Connect servers speak gRPC-Web in binary only: the gateway does the base64.
          upHeaders["content-type"] = "application/grpc-web+proto";
          delete upHeaders["content-length"];
        }
      }
      return { target, up: target.session().request(upHeaders, { endStream: protocol.get && translated === undefined }) };
    };

    let first: Attempt;
    try {
      first = open();
    } catch (error) {
      finishRejected(call, new ConnectError(`upstream unavailable: ${(error as Error).message}`, Code.Unavailable));
      return;
    }
    const life = startLife(down, first, protocol, timeoutMs, record);
    if (retryTokens < 10) retryTokens += 0.1;
    // Idempotent unary calls may be retried on another address, before any response byte went out.
    const reopen = route.policy.idempotent && route.kind === "unary" ? () => retryAttempt(life, open) : undefined;
    if (translated === undefined) {
      runPassThrough(down, life, protocol, maxBytes, record, route.kind === "unary", reopen);
      return;
    }
    runTranslated({
      watch: (up, broken) => watchUpstream(life, up, broken),
      reopen,
      down,
      up: first.up,
      headers,
      caller: protocol,
      upstream: translated,
      transcoder: transcode
        ? { input: route.method.input, output: route.method.output, registry: options.routes().registry }
        : undefined,
      query: q < 0 ? "" : call.rawPath.slice(q + 1),
      maxBytes,
      life,
    });
  }

  function tooLarge(declared: number, max: number): ConnectError {
    return new ConnectError(`message of ${declared} bytes exceeds the limit of ${max} bytes`, Code.ResourceExhausted);
  }

  /** The bookkeeping of one forwarded call: deadline, in-flight counts, cancel and failure handling. */
  function startLife(down: Downstream, attempt: Attempt, protocol: CallProtocol, timeoutMs: number, record: CallRecord): Life {
    inFlight++;
    attempt.target.outstanding++;
    const timer = setTimeout(
      () => life.fail(new ConnectError(`deadline of ${timeoutMs} ms exceeded`, Code.DeadlineExceeded)),
      timeoutMs,
    );
    const life: Life = {
      done: false,
      failure: undefined,
      upEnded: false,
      attempt,
      finish(code) {
        if (life.done) return;
        life.done = true;
        inFlight--;
        life.attempt.target.outstanding--;
        clearTimeout(timer);
        record.code = code;
        options.onCallEnd?.(record);
      },
      fail(error) {
        if (life.done) return;
        life.failure = error;
        const up = life.attempt.up;
        if (!up.closed) up.close(h2.NGHTTP2_CANCEL);
        life.finish(codeString(error.code));
        if (!down.headersSent) reject(down, protocol, error);
        else endWithError(down, protocol, error);
      },
      reached: () => life.attempt.target.succeeded(),
      upstreamFailed: (reason) => life.attempt.target.failed(reason),
      switchTo(next) {
        life.attempt.target.outstanding--;
        next.target.outstanding++;
        life.attempt = next;
        life.upEnded = false;
      },
    };
    // The caller went away (cancel, reset, disconnect): cancel the upstream stream.
    down.on("close", () => {
      if (life.done) return;
      const up = life.attempt.up;
      if (!up.closed) up.close(h2.NGHTTP2_CANCEL);
      life.finish("canceled");
    });
    return life;
  }

  /** Moves the call to a new upstream stream on another address, within the retry budget; undefined when it may not. */
  function retryAttempt(life: Life, open: (exclude?: UpstreamTarget) => Attempt): H2Stream | undefined {
    if (!spendRetry()) return undefined;
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

  /** Calls `broken` when the upstream stream closes before it ended normally (reset, connection lost). */
  function watchUpstream(life: Life, up: H2Stream, broken: () => void): void {
    // A stream that ends with its connection says why (e.g. a TLS certificate that failed to verify).
    let lost: string | undefined;
    up.on("error", (error: Error) => {
      lost = error.message;
    });
    up.on("end", () => {
      if (life.attempt.up === up) life.upEnded = true;
    });
    up.on("close", () => {
      if (life.done || life.upEnded || life.attempt.up !== up) return;
      life.attempt.target.failed(lost ?? `stream reset (${up.rstCode})`);
      broken();
    });
  }

  /**
   * Same protocol on both sides: bodies pass untouched (gRPC-Web text only changes base64). With
   * `reopen`, a call that failed before any response byte is retried once on another address.
   * A unary answer (up to 64 KiB) goes to the caller in one piece when the upstream ended it:
   * upstreams often send the end of stream in a packet of its own, and forwarding each piece
   * at once would cost the caller's connection a second write per call.
   */
  function runPassThrough(
    down: Downstream,
    life: Life,
    protocol: CallProtocol,
    maxBytes: number,
    record: CallRecord,
    unary: boolean,
    reopen: (() => H2Stream | undefined) | undefined,
  ): void {
    let responded = false;
    let trailers: H2Headers | undefined;
    const replay = createRequestReplay(reopen);
    if (protocol.get) replay.ended();

    /** Tries another address once when nothing reached the caller yet; otherwise the call fails. */
    const retry = (error: ConnectError): void => {
      if (responded || down.headersSent || replay.retry(attach) === undefined) life.fail(error);
    };

    // Request body: untouched, with the size limit read from the length prefixes.
    if (!protocol.get) {
      const limit = protocol.enveloped ? createEnvelopeLimit(maxBytes) : undefined;
      const decode = protocol.text ? createBase64Decoder() : undefined;
      let total = 0;
      const onDrain = () => down.resume();
      down.on("data", (raw: Buffer) => {
        if (life.done) return;
        const chunk = decode === undefined ? raw : decode(raw);
        if (limit !== undefined) {
          if (!limit.push(chunk)) return life.fail(tooLarge(limit.declared, maxBytes));
        } else {
          total += chunk.length;
          if (total > maxBytes) return life.fail(tooLarge(total, maxBytes));
        }
        replay.sent(chunk);
        const up = life.attempt.up;
        if (!up.write(chunk)) {
          down.pause();
          up.once("drain", onDrain);
        }
      });
      const onEnd = () => {
        replay.ended();
        const up = life.attempt.up;
        if (!life.done && !up.closed) up.end();
      };
      // An empty body may have ended while the call waited for auth.
      if (down.readableEnded) onEnd();
      else down.on("end", onEnd);
    }

    const encode = protocol.text ? createBase64Encoder() : undefined;
    // Connect streaming and gRPC-Web carry their status in the body's last envelope.
    const sniffer =
      protocol.protocol === "grpc-web" || (protocol.protocol === "connect" && protocol.enveloped)
        ? createEndOfStreamSniffer(protocol.protocol)
        : undefined;
    const onDownDrain = () => life.attempt.up.resume();
    /** A unary answer held until the upstream ends it. */
    let held: { headers: H2Headers; chunks: Buffer[]; bytes: number } | undefined;
    const respond = (h: H2Headers) => {
      if (protocol.protocol === "grpc") {
        down.on("wantTrailers", () => {
          down.sendTrailers(
            life.failure ? grpcStatusTrailers(life.failure) : (trailers ?? grpcStatusTrailers(missingTrailers())),
          );
        });
        down.respond(h, { waitForTrailers: true });
      } else {
        down.respond(h);
      }
    };
    /** The held answer grew too big to hold: from here on it streams. */
    const release = () => {
      if (held === undefined) return;
      const { headers, chunks } = held;
      held = undefined;
      respond(headers);
      let ok = true;
      for (const chunk of chunks) ok = down.write(chunk) && ok;
      if (!ok) {
        life.attempt.up.pause();
        down.once("drain", onDownDrain);
      }
    };
    const attach = (up: H2Stream) => {
      watchUpstream(life, up, () =>
        retry(new ConnectError(responded ? "upstream connection lost" : "upstream unavailable", Code.Unavailable)),
      );
      up.on("response", (h: H2Headers, flags: number) => {
        if (life.done || life.attempt.up !== up) return;
        if (down.destroyed) {
          // The caller is gone; its 'close' is on its way.
          life.finish("canceled");
          if (!up.closed) up.close(h2.NGHTTP2_CANCEL);
          return;
        }
        const status = Number(h[":status"]);
        const error = checkUpstreamResponse(protocol, status, h["content-type"]);
        if (error !== undefined) {
          if (status >= 500) life.upstreamFailed(`HTTP ${status}`);
          if (status === 502 || status === 503) return retry(error);
          return life.fail(error);
        }
        life.reached();
        responded = true;
        if (encode !== undefined) {
          h["content-type"] = protocol.contentType;
          delete h["content-length"];
        }
        if ((flags & END_STREAM) !== 0) {
          // Trailers-only (gRPC) or an empty body.
          down.respond(h, { endStream: true });
          life.upEnded = true;
          life.finish(
            protocol.protocol === "connect" && !protocol.enveloped ? connectUnaryCode(status) : grpcCode(h["grpc-status"]),
          );
          return;
        }
        if (protocol.protocol === "connect" && !protocol.enveloped) record.code = connectUnaryCode(status);
        if (unary) held = { headers: h, chunks: [], bytes: 0 };
        else respond(h);
      });
      up.on("trailers", (t: H2Headers) => {
        trailers = t;
      });
      up.on("data", (chunk: Buffer) => {
        if (life.done || !responded) return;
        sniffer?.push(chunk);
        const out = encode === undefined ? chunk : encode.push(chunk);
        if (held !== undefined) {
          held.chunks.push(out);
          held.bytes += out.length;
          if (held.bytes <= 65_536) return;
          release();
          return;
        }
        if (!down.write(out)) {
          up.pause();
          down.once("drain", onDownDrain);
        }
      });
      up.on("end", () => {
        if (life.done || life.attempt.up !== up) return;
        life.finish(
          protocol.protocol === "grpc"
            ? trailers
              ? grpcCode(trailers["grpc-status"])
              : "unknown"
            : (sniffer?.code() ?? record.code),
        );
        const tail = encode?.end();
        if (held === undefined) {
          down.end(tail);
          return;
        }
        // The whole unary answer at once: headers, body and end (or trailers) in one write.
        const { headers, chunks } = held;
        held = undefined;
        respond(headers);
        if (tail !== undefined && tail.length > 0) chunks.push(tail);
        const last = chunks.pop();
        for (const chunk of chunks) down.write(chunk);
        down.end(last);
      });
    };
    attach(life.attempt.up);
  }

  return {
    handle,
    get inFlight() {
      return inFlight;
    },
  };
}

function missingTrailers(): ConnectError {
  return new ConnectError("upstream ended the stream without status", Code.Internal);
}

function grpcCode(status: unknown): string {
  const n = Number(status ?? 2);
  return Number.isInteger(n) ? codeString(n as unknown as Code) : "unknown";
}

function connectUnaryCode(status: number): string {
  return codeByHttpStatus[status] ?? "unknown";
}

function noop(): void {}
