import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import {
  AuthenticateRequestSchema,
  type AuthenticateResponse,
  AuthenticateResponseSchema,
  AuthService,
} from "@portico/gen/portico/auth/v1/auth_pb.js";
import type { CallGuard, Logger } from "@portico/kit";

/** The path of the RPC this fast path serves. */
export const AUTHENTICATE_PATH = "/portico.auth.v1.AuthService/Authenticate";

export interface AuthenticateFastPathOptions {
  authenticate(accessToken: string): Promise<AuthenticateResponse>;
  /** The service's policy check: Authenticate answers only the callers its .proto lists (the gateway). */
  guard: CallGuard;
  logger: Logger;
}

const MAX_BODY = 16 * 1024;
type Protocol = "grpc" | "connect";

// Requests this path understands: uncompressed binary gRPC and Connect unary. Everything else
// (JSON, gRPC-Web, compression) returns false and goes to the regular connect-node router.
function protocolOf(req: Http2ServerRequest): Protocol | undefined {
  if (req.method !== "POST") return undefined;
  const type = req.headers["content-type"];
  if (type === "application/grpc" || type === "application/grpc+proto") {
    const encoding = req.headers["grpc-encoding"];
    return encoding === undefined || encoding === "identity" ? "grpc" : undefined;
  }
  if (type === "application/proto") {
    const encoding = req.headers["content-encoding"];
    return encoding === undefined || encoding === "identity" ? "connect" : undefined;
  }
  return undefined;
}

function grpcMessage(text: string): string {
  return encodeURIComponent(text).replace(/%20/g, " ");
}

function sendError(res: Http2ServerResponse, protocol: Protocol, error: ConnectError) {
  if (protocol === "grpc") {
    // Trailers-only response.
    res.writeHead(200, {
      "content-type": "application/grpc+proto",
      "grpc-status": String(error.code),
      "grpc-message": grpcMessage(error.rawMessage),
    });
    res.end();
    return;
  }
  res.writeHead(codeToHttpStatus(error.code), { "content-type": "application/json" });
  res.end(errorToJsonBytes(error, {}));
}

function sendMessage(res: Http2ServerResponse, protocol: Protocol, bytes: Uint8Array) {
  if (protocol === "grpc") {
    const envelope = Buffer.allocUnsafe(5 + bytes.length);
    envelope[0] = 0;
    envelope.writeUInt32BE(bytes.length, 1);
    envelope.set(bytes, 5);
    res.writeHead(200, { "content-type": "application/grpc+proto" });
    res.addTrailers({ "grpc-status": "0" });
    res.end(envelope);
    return;
  }
  res.writeHead(200, { "content-type": "application/proto" });
  res.end(bytes);
}

function requestMessage(protocol: Protocol, body: Buffer): Uint8Array {
  if (protocol === "connect") return body;
  if (body.length < 5 || body[0] !== 0 || body.readUInt32BE(1) !== body.length - 5) {
    throw new ConnectError("expected one uncompressed gRPC message", Code.InvalidArgument);
  }
  return body.subarray(5);
}

/**
 * Authenticate without connect-node's per-call machinery: the gateway calls it for every token its
 * cache does not hold, so it reads the request, runs the same verification as the RPC handler and
 * writes the response with no router, interceptors or context objects in between.
 */
export function createAuthenticateFastPath(options: AuthenticateFastPathOptions) {
  return (req: Http2ServerRequest, res: Http2ServerResponse): boolean => {
    const protocol = protocolOf(req);
    if (!protocol) return false;
    const header = {
      get: (name: string) => {
        const value = req.headers[name];
        return typeof value === "string" ? value : null;
      },
    };
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY) chunks.push(chunk);
    });
    req.on("end", () => {
      const respond = async () => {
        await options.guard.check(AuthService.method.authenticate, header);
        if (size > MAX_BODY) throw new ConnectError(`request larger than ${MAX_BODY} bytes`, Code.ResourceExhausted);
        let token: string;
        try {
          token = fromBinary(AuthenticateRequestSchema, requestMessage(protocol, Buffer.concat(chunks))).accessToken;
        } catch (error) {
          if (error instanceof ConnectError) throw error;
          throw new ConnectError("cannot decode AuthenticateRequest", Code.InvalidArgument);
        }
        const response = await options.authenticate(token);
        sendMessage(res, protocol, toBinary(AuthenticateResponseSchema, response));
      };
      respond().catch((error: unknown) => {
        if (!(error instanceof ConnectError)) options.logger.error({ err: error, method: AUTHENTICATE_PATH }, "handler failed");
        if (!res.headersSent) sendError(res, protocol, ConnectError.from(error));
      });
    });
    return true;
  };
}
