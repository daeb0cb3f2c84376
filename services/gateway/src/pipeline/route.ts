import { Code } from "@connectrpc/connect";
import { connectError } from "../connect-error.js";
import type { Downstream, IncomingHttpHeaders, Peer } from "../downstream.js";
import { sendError } from "../error-response.js";
import { forwardedFor } from "../forwarded-for.js";
import type { Route } from "../route-table.js";
import {
  type CallProtocol,
  guessProtocol,
  protocolFromContentType,
  protocolFromGetQuery,
  supportedContentTypes,
} from "../rpc-protocol.js";
import { reflectionPaths } from "../server-reflection.js";
import type { CustomCaller } from "../translate.js";
import { authenticate } from "./authenticate.js";
import { type CallRecord, type PendingCall, type ProxyContext, reject } from "./call.js";

const rpcPathPattern = /^\/[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)+\/[A-Za-z_][\w]*$/;

/**
 * Stage 1, route: CORS, the route of `:path` (one map lookup), server reflection, the web app's
 * static files, the caller's protocol and method; then the call goes to `authenticate`.
 */
export function route(ctx: ProxyContext, down: Downstream, headers: IncomingHttpHeaders, peer: Peer): void {
  down.on("error", noop);
  const method = headers[":method"] as string;
  const rawPath = (headers[":path"] as string | undefined) ?? "/";
  const q = rawPath.indexOf("?");
  const path = q < 0 ? rawPath : rawPath.slice(0, q);
  const origin = headers.origin;
  const cors = origin === undefined ? undefined : ctx.options.cors?.();
  if (cors !== undefined) {
    if (method === "OPTIONS") {
      cors.preflight(down, headers);
      return;
    }
    cors.decorate(down, origin as string);
  }
  const route = ctx.options.routes().get(path);
  const contentType = headers["content-type"];
  if (route === undefined && method === "POST" && reflectionPaths.has(path)) {
    const reflection = ctx.options.reflection?.();
    if (reflection !== undefined) {
      reflection(down, headers);
      return;
    }
  }
  if (route === undefined) {
    if (ctx.options.rest?.(ctx, down, headers, peer, method, rawPath)) return;
    if ((method === "GET" || method === "HEAD") && !rpcPathPattern.test(path) && ctx.options.staticFiles?.(down, headers, path)) {
      return;
    }
    const protocol = protocolFromContentType(contentType) ?? guessProtocol(contentType);
    reject(down, protocol, connectError(`no method ${path.slice(0, 200)} is served here`, Code.Unimplemented));
    return;
  }
  let protocol: CallProtocol | undefined;
  if (method === "POST") {
    protocol = protocolFromContentType(contentType);
    if (protocol === undefined) {
      const guessed = guessProtocol(contentType);
      const message = `content-type "${String(contentType ?? "").slice(0, 100)}" is not supported: use one of ${supportedContentTypes.join(", ")}`;
      if (guessed.protocol !== "connect") {
        reject(down, guessed, connectError(message, Code.InvalidArgument));
        return;
      }
      sendError(down, guessed, connectError(message, Code.InvalidArgument), {
        ":status": 415,
        "accept-post": supportedContentTypes.join(", "),
      });
      down.resume();
      return;
    }
  } else if (method === "GET" && route.policy.noSideEffects && route.kind === "unary") {
    protocol = protocolFromGetQuery(q < 0 ? "" : rawPath.slice(q + 1));
  } else {
    const error = connectError(
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
  admit(ctx, down, headers, peer, route, protocol, rawPath, path);
}

/** Starts the call of a routed request (RPC or REST, `custom`) and hands it to `authenticate`. */
export function admit(
  ctx: ProxyContext,
  down: Downstream,
  headers: IncomingHttpHeaders,
  peer: Peer,
  route: Route,
  protocol: CallProtocol,
  rawPath: string,
  path: string,
  custom?: CustomCaller,
): void {
  const forwarded = forwardedFor(headers, peer, ctx.options.trustedProxies());
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
    span: undefined,
  };
  const call: PendingCall = { down, headers, rawPath, route, protocol, forwarded, record, custom };
  authenticate(ctx, call);
}

function noop(): void {}
