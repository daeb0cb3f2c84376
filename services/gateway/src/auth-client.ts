import { timestampMs } from "@bufbuild/protobuf/wkt";
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus } from "@portico/gen/grpc/health/v1/health_pb.js";
import { AuthService, type WatchRevocationsResponse } from "@portico/gen/portico/auth/v1/auth_pb.js";
import type { VerifiedToken } from "./auth-cache.js";

export interface AuthClientOptions {
  /** `http://host:port` of every auth service address. */
  targets: readonly string[];
  /** Timeout of one Authenticate call (ms). */
  timeoutMs: number;
  /** Headers for health checks (the kit's identity interceptor guards grpc.health.v1 too). */
  healthHeaders?: () => Record<string, string>;
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

/** The gateway's control-plane client of `portico.auth.v1.AuthService`, over gRPC on pooled sessions. */
export function createAuthClient(options: AuthClientOptions): AuthClient {
  if (options.targets.length === 0) throw new Error("auth client: no auth service address");
  const managers = options.targets.map((url) => new Http2SessionManager(url, { pingIntervalMs: 10_000, pingTimeoutMs: 5_000 }));
  const clients: Client<typeof AuthService>[] = managers.map((sessionManager, i) =>
    createClient(AuthService, createGrpcTransport({ baseUrl: options.targets[i] as string, sessionManager })),
  );
  const health = createClient(
    Health,
    createGrpcTransport({ baseUrl: options.targets[0] as string, sessionManager: managers[0] }),
  );
  let next = 0;
  const pick = () => {
    const client = clients[next] as Client<typeof AuthService>;
    next = (next + 1) % clients.length;
    return client;
  };
  return {
    async verify(token) {
      const res = await pick().authenticate({ accessToken: token }, { timeoutMs: options.timeoutMs });
      const identity = res.identity;
      if (!identity || identity.userId === "") {
        throw new ConnectError("the auth service answered no identity", Code.Internal);
      }
      return {
        identity: {
          userId: identity.userId,
          tier: identity.tier,
          roles: [...identity.roles],
          sessionId: identity.sessionId,
        },
        expiresAtMs: identity.expiresAt ? timestampMs(identity.expiresAt) : Number.POSITIVE_INFINITY,
      };
    },
    watchRevocations(signal) {
      return pick().watchRevocations({}, { signal });
    },
    async healthy(timeoutMs) {
      try {
        const res = await health.check({ service: "" }, { timeoutMs, headers: options.healthHeaders?.() });
        return res.status === HealthCheckResponse_ServingStatus.SERVING;
      } catch {
        return false;
      }
    },
    close() {
      for (const m of managers) m.abort();
    },
  };
}
