import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import { AuthService } from "@portico/gen/portico/auth/v1/auth_pb.js";
import type { CallGuard, Logger, StreamHandler } from "@portico/kit";
import {
  type AuthenticateOutcome,
  decodeAuthenticateBatchRequest,
  decodeAuthenticateRequest,
  encodeAuthenticateBatchResponse,
  encodeAuthenticateResponse,
  maxAuthenticateBatch,
} from "@portico/kit/authenticate-codec";
import type { AccessClaims } from "./access-tokens.js";

const rpcPath = (method: DescMethod) => `/${method.parent.typeName}/${method.name}`;

/** The paths of the RPCs this fast path serves. */
export const AUTHENTICATE_PATH = rpcPath(AuthService.method.authenticate);
export const AUTHENTICATE_BATCH_PATH = rpcPath(AuthService.method.authenticateBatch);

export interface AuthenticateFastPathOptions {
  /** The claims of a valid, unrevoked token (the RPC handler's logic). */
  authenticate(accessToken: string): Promise<AccessClaims>;
  /** The service's policy check: Authenticate answers only the callers its .proto lists (the gateway). */
  guard: CallGuard;
  logger: Logger;
}

export interface AuthenticateBatchFastPathOptions {
  /** Each token's claims or failure (the RPC handler's logic); throws for a batch over the limits. */
  authenticateBatch(accessTokens: readonly string[]): Promise<AuthenticateOutcome[]>;
  guard: CallGuard;
  logger: Logger;
}

const MAX_BODY = 16 * 1024;
/** A batch's tokens plus their tags and lengths. */
const MAX_BATCH_BODY = maxAuthenticateBatch.bytes + maxAuthenticateBatch.tokens * 4;
type Protocol = "grpc" | "connect";

// Requests this path understands: uncompressed binary gRPC and Connect unary. Everything else
// (JSON, gRPC-Web, compression) returns undefined and goes to the regular connect-node router.
function protocolOf(headers: IncomingHttpHeaders): Protocol | undefined {
  if (headers[":method"] !== "POST") return undefined;
  const type = headers["content-type"];
  if (type === "application/grpc" || type === "application/grpc+proto") {
    const encoding = headers["grpc-encoding"];
    return encoding === undefined || encoding === "identity" ? "grpc" : undefined;
  }
  if (type === "application/proto") {
    const encoding = headers["content-encoding"];
    return encoding === undefined || encoding === "identity" ? "connect" : undefined;
  }
  return undefined;
}

function grpcMessage(text: string): string {
  return encodeURIComponent(text).replace(/%20/g, " ");
}

const GRPC_OK_TRAILERS = { "grpc-status": "0" };

function sendError(stream: ServerHttp2Stream, protocol: Protocol, error: ConnectError) {
  if (protocol === "grpc") {
    // Trailers-only response.
    stream.respond(
      {
        ":status": 200,
        "content-type": "application/grpc+proto",
        "grpc-status": String(error.code),
        "grpc-message": grpcMessage(error.rawMessage),
      },
      { endStream: true },
    );
    return;
  }
  stream.respond({ ":status": codeToHttpStatus(error.code), "content-type": "application/json" });
  stream.end(errorToJsonBytes(error, {}));
}

const GRPC_OK_HEADERS = { ":status": 200, "content-type": "application/grpc+proto" };
const CONNECT_OK_HEADERS = { ":status": 200, "content-type": "application/proto" };
const WAIT_FOR_TRAILERS = { waitForTrailers: true };

function sendTrailers(this: ServerHttp2Stream) {
  this.sendTrailers(GRPC_OK_TRAILERS);
}

/** Writes a unary answer: `encode(envelope)` is the response message, behind a gRPC envelope's prefix when asked. */
function sendMessage(stream: ServerHttp2Stream, protocol: Protocol, encode: (envelope: boolean) => Buffer) {
  if (protocol === "grpc") {
    stream.respond(GRPC_OK_HEADERS, WAIT_FOR_TRAILERS);
    stream.once("wantTrailers", sendTrailers);
    stream.end(encode(true));
    return;
  }
  // Connect (the gateway's protocol): the answer is written, and the stream ended once the write
  // has completed, so END_STREAM goes out on an empty DATA frame of its own. With
  // `stream.end(bytes)` the stream closed, and was destroyed, before its write completed, and
  // node's writable stream then made an ERR_STREAM_DESTROYED error, stack trace and all, on every
  // call (44k fewer instructions per call, client and server together, callgrind).
  stream.respond(CONNECT_OK_HEADERS);
  stream.write(encode(false), (error) => {
    if (!error && !stream.destroyed) stream.end();
  });
}

function requestMessage(protocol: Protocol, body: Buffer): Uint8Array {
  if (protocol === "connect") return body;
  if (body.length < 5 || body[0] !== 0 || body.readUInt32BE(1) !== body.length - 5) {
    throw new ConnectError("expected one uncompressed gRPC message", Code.InvalidArgument);
  }
  return body.subarray(5);
}

// A reset or broken stream: nothing to answer any more.
function ignore() {}

interface UnaryFastPath {
  method: DescMethod;
  maxBody: number;
  guard: CallGuard;
  logger: Logger;
  /** Decodes the request message and answers it: the response message's encoder. Throws ConnectError. */
  answer(message: Uint8Array): Promise<(envelope: boolean) => Buffer>;
}

/**
 * A unary method on node's raw HTTP/2 stream API, for kit's `streamHandlers`: it reads the request,
 * makes the service's policy check and writes the answer with no compatibility request/response
 * objects, router, interceptors or context objects in between. Requests in any other protocol are
 * left to the router (the handler returns false).
 */
function unaryFastPath(path: UnaryFastPath): StreamHandler {
  const methodPath = rpcPath(path.method);
  return (stream, headers) => {
    const protocol = protocolOf(headers);
    if (!protocol) return false;
    const header = {
      get: (name: string) => {
        const value = headers[name];
        return typeof value === "string" ? value : null;
      },
    };
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on("error", ignore);
    stream.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= path.maxBody) chunks.push(chunk);
    });
    stream.on("end", () => {
      const respond = async () => {
        await path.guard.check(path.method, header);
        if (size > path.maxBody) throw new ConnectError(`request larger than ${path.maxBody} bytes`, Code.ResourceExhausted);
        const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
        const encode = await path.answer(requestMessage(protocol, body));
        if (stream.destroyed) return;
        sendMessage(stream, protocol, encode);
      };
      respond().catch((error: unknown) => {
        if (!(error instanceof ConnectError)) path.logger.error({ err: error, method: methodPath }, "handler failed");
        if (!stream.destroyed && !stream.headersSent) sendError(stream, protocol, ConnectError.from(error));
      });
    });
    return true;
  };
}

/** The request message decoded, or InvalidArgument naming the message that could not be read. */
function decodeOr<T>(decode: (message: Uint8Array) => T, message: Uint8Array, name: string): T {
  try {
    return decode(message);
  } catch {
    throw new ConnectError(`cannot decode ${name}`, Code.InvalidArgument);
  }
}

/**
 * Authenticate on node's raw HTTP/2 stream API: the gateway calls it for a token its cache does not
 * hold, so it makes the same policy check and runs the same verification as the RPC handler.
 */
export function createAuthenticateFastPath(options: AuthenticateFastPathOptions): StreamHandler {
  return unaryFastPath({
    method: AuthService.method.authenticate,
    maxBody: MAX_BODY,
    guard: options.guard,
    logger: options.logger,
    async answer(message) {
      const claims = await options.authenticate(decodeOr(decodeAuthenticateRequest, message, "AuthenticateRequest"));
      return (envelope) => encodeAuthenticateResponse(claims, envelope);
    },
  });
}

/**
 * AuthenticateBatch on node's raw HTTP/2 stream API: the gateway's cache misses of one event-loop
 * turn in one call, each token verified as Authenticate verifies it.
 */
export function createAuthenticateBatchFastPath(options: AuthenticateBatchFastPathOptions): StreamHandler {
  return unaryFastPath({
    method: AuthService.method.authenticateBatch,
    maxBody: MAX_BATCH_BODY,
    guard: options.guard,
    logger: options.logger,
    async answer(message) {
      const outcomes = await options.authenticateBatch(
        decodeOr(decodeAuthenticateBatchRequest, message, "AuthenticateBatchRequest"),
      );
      return (envelope) => encodeAuthenticateBatchResponse(outcomes, envelope);
    },
  });
}
