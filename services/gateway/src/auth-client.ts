import * as http2 from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { codeFromHttpStatus, errorFromJsonBytes } from "@connectrpc/connect/protocol-connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus } from "@portico/gen/grpc/health/v1/health_pb.js";
import {
  AuthenticateRequestSchema,
  type AuthenticateResponse,
  AuthenticateResponseSchema,
  AuthService,
  type WatchRevocationsResponse,
} from "@portico/gen/portico/auth/v1/auth_pb.js";
import type { VerifiedToken } from "./auth-cache.js";
import type { H2Stream } from "./h2/index.js";
import { createUpstream, type UpstreamTarget } from "./upstream.js";

export interface AuthClientOptions {
  /** `http://host:port` or `https://host[:port]` of every auth service address. */
  targets: readonly string[];
  /** PEM certificates trusted for `https://` addresses instead of Node's bundled roots. */
  ca?: string | Buffer;
  /** Timeout of one Authenticate call (ms). */
  timeoutMs: number;
  /** Headers of every call to auth: the gateway's own service token (Authenticate and WatchRevocations answer only it). */
  callHeaders?: () => Record<string, string>;
}

export interface AuthClient {
  /** Authenticate over a pooled HTTP/2 session; rejects with the auth service's ConnectError. */
  verify(token: string): Promise<VerifiedToken>;
  /** The WatchRevocations stream of one address, ending when `signal` aborts. */
  watchRevocations(signal: AbortSignal): AsyncIterable<WatchRevocationsResponse>;
  /** Asks `grpc.health.v1.Health` of the first auth address; true when it is serving. */
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
      reject(new ConnectError((error as Error).message, Code.Unavailable));
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
    stream.on("error", (error) => fail(new ConnectError(error.message, Code.Unavailable)));
    stream.on("close", () => {
      if (settled) return;
      const body = Buffer.concat(chunks);
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
      let identity: AuthenticateResponse["identity"];
      try {
        identity = fromBinary(AuthenticateResponseSchema, body).identity;
      } catch (error) {
        return fail(new ConnectError(`bad Authenticate answer: ${(error as Error).message}`, Code.Internal));
      }
      if (!identity || identity.userId === "")
        return fail(new ConnectError("the auth service answered no identity", Code.Internal));
      settled = true;
      clearTimeout(timer);
      target.succeeded();
      resolve({
        identity: { userId: identity.userId, tier: identity.tier, roles: [...identity.roles], sessionId: identity.sessionId },
        expiresAtMs: identity.expiresAt ? timestampMs(identity.expiresAt) : Number.POSITIVE_INFINITY,
      });
    });
    stream.end(toBinary(AuthenticateRequestSchema, create(AuthenticateRequestSchema, { accessToken: token })));
  });
}

/** The gateway's control-plane client of `portico.auth.v1.AuthService` on pooled HTTP/2 sessions. */
export function createAuthClient(options: AuthClientOptions): AuthClient {
  if (options.targets.length === 0) throw new Error("auth client: no auth service address");
  const managers = options.targets.map(
    (url) =>
      new Http2SessionManager(
        url,
        { pingIntervalMs: 10_000, pingTimeoutMs: 5_000 },
        options.ca === undefined ? undefined : { ca: options.ca },
      ),
  );
  const clients: Client<typeof AuthService>[] = managers.map((sessionManager, i) =>
    createClient(AuthService, createGrpcTransport({ baseUrl: options.targets[i] as string, sessionManager })),
  );
  const health = createClient(
    Health,
    createGrpcTransport({ baseUrl: options.targets[0] as string, sessionManager: managers[0] }),
  );
  // Authenticate is the hot control-plane call (every cache miss): a hand-rolled Connect unary
  // call over the pooled session, without a client library's per-call machinery.
  const authUpstream = createUpstream({
    service: AuthService.typeName,
    targets: [...options.targets],
    protocol: "connect",
    ca: options.ca,
  });
  let next = 0;
  const pick = () => {
    const client = clients[next] as Client<typeof AuthService>;
    next = (next + 1) % clients.length;
    return client;
  };
  return {
    verify(token) {
      return authenticate(authUpstream.pick(), token, options.timeoutMs, options.callHeaders?.());
    },
    watchRevocations(signal) {
      return pick().watchRevocations({}, { signal, headers: options.callHeaders?.() });
    },
    async healthy(timeoutMs) {
      try {
        const res = await health.check({ service: "" }, { timeoutMs, headers: options.callHeaders?.() });
        return res.status === HealthCheckResponse_ServingStatus.SERVING;
      } catch {
        return false;
      }
    },
    close() {
      authUpstream.close();
      for (const m of managers) m.abort();
    },
  };
}
