import { randomBytes, randomUUID } from "node:crypto";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import {
  type CallOptions,
  type Client,
  Code,
  ConnectError,
  createClient,
  createContextKey,
  createContextValues,
  type HandlerContext,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { type CircuitBreakerOptions, createCircuitBreaker } from "./circuit-breaker.js";
import { ConfigError } from "./config-error.js";
import type { Env } from "./env-reader.js";
import { type Caller, callerKey, GATEWAY_SERVICE, identityHeaders } from "./identity.js";
import { checkServiceName, serviceNameOf, serviceUrls } from "./service-directory.js";
import type { TokenSigner } from "./token-signer.js";
import { tracingClientInterceptor } from "./tracing.js";

export interface ServiceClientOptions {
  /** The calling service's signer (`ServiceIdentity.signer`): every call carries its own token. */
  signer: TokenSigner;
  /** The callee's service name, the `aud` of the tokens (default from the proto package: `portico.lang.v1` → `lang`). */
  name?: string;
  /**
   * The callee's address, or its replicas' (default `<NAME>_URL`, a comma-separated list, else
   * 127.0.0.1 and `<NAME>_PORT` or the port table). Calls go to the replicas in turn.
   */
  url?: string | readonly string[];
  /** Where `<NAME>_URL` and `<NAME>_PORT` are read (default process.env). */
  env?: Env;
  /** Wire protocol (default "connect", binary). */
  protocol?: "connect" | "grpc";
  /** Pooled HTTP/2 connections to each replica of the callee, used in turn (default 1, at most 16). */
  connections?: number;
  /** Deadline of a call when the handler's own call has none (default 10 000 ms). */
  timeoutMs?: number;
  /**
   * Retries of idempotent unary methods (`idempotency_level` NO_SIDE_EFFECTS or IDEMPOTENT) that
   * fail `unavailable`, and of any unary call whose connection was refused (nothing was sent), on
   * another replica when there is one: at most `attempts` tries per call (default 2), and retries at
   * most `ratio` of calls (default 0.2) plus a reserve of `reserve` (default 10).
   */
  retry?: { attempts?: number; ratio?: number; reserve?: number };
  /** Opens after consecutive `unavailable`/`deadline_exceeded` failures; open, calls fail `unavailable` at once. */
  circuit?: CircuitBreakerOptions;
  interceptors?: Interceptor[];
}

export interface ServiceClient<S extends DescService> {
  /** The callee's service name. */
  readonly name: string;
  /** The callee's replicas' addresses. */
  readonly urls: readonly string[];
  /**
   * A client for calls made while handling `ctx`: it passes the user on (the gateway's assertion
   * and this service's token: the callee sees the user and the chain), the remaining deadline, the
   * cancellation, `traceparent` (a child span) and `x-request-id`.
   */
  for(ctx: HandlerContext): Client<S>;
  /** A client for calls on the service's own behalf (its token only, no user), e.g. background work. */
  readonly self: Client<S>;
  /** Closes the pooled connections. */
  close(): void;
}

interface Outgoing {
  caller: Caller;
  requestId?: string;
  traceparent?: string;
}
const outgoingKey = createContextKey<Outgoing | undefined>(undefined, {
  description: "the handler call a service call is made for",
});

const TRACEPARENT = /^([\da-f]{2})-([\da-f]{32})-([\da-f]{16})-([\da-f]{2})$/;
function childTraceparent(parent: string | undefined): string {
  const span = randomBytes(8).toString("hex");
  const m = parent === undefined ? null : TRACEPARENT.exec(parent.trim().toLowerCase());
  if (m && m[2] !== "0".repeat(32)) return `00-${m[2]}-${span}-${m[4]}`;
  return `00-${randomBytes(16).toString("hex")}-${span}-01`;
}

/**
 * How long a replica that answered `unavailable` is passed over while another can take the call (as
 * the gateway's outlier ejection does; its base is 5 s too). When every replica has, they all take
 * calls again.
 */
const replicaRestMs = 5_000;

interface Replica {
  transports: Transport[];
  turn: number;
  restUntil: number;
}

/** Whether the callee refused the connection: the call never left, so any unary call may go elsewhere. */
const connectionRefused = (error: ConnectError) => (error.cause as { code?: unknown } | undefined)?.code === "ECONNREFUSED";

const isIdempotent = (method: DescMethod) =>
  method.methodKind === "unary" &&
  (method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS ||
    method.idempotency === MethodOptions_IdempotencyLevel.IDEMPOTENT);

function checkInt(name: string, value: number | undefined, fallback: number, min: number, max: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(`createServiceClient: ${name} ${value} is not valid; expected a whole number from ${min} to ${max}`);
  }
  return v;
}

/**
 * A client of another service of the platform, called directly (never back through the gateway)
 * over pooled HTTP/2 connections, with the caller's identity passed on, the deadline carried,
 * idempotent calls retried within a budget and a circuit breaker that answers `unavailable` at
 * once while the callee keeps failing.
 */
export function createServiceClient<S extends DescService>(service: S, options: ServiceClientOptions): ServiceClient<S> {
  const name = checkServiceName(options.name ?? serviceNameOf(service.typeName), `createServiceClient(${service.typeName})`);
  const urls =
    options.url === undefined
      ? serviceUrls(name, options.env)
      : typeof options.url === "string"
        ? [options.url]
        : [...options.url];
  if (urls.length === 0)
    throw new ConfigError(`createServiceClient(${service.typeName}): url is an empty list; expected at least one address`);
  for (const url of urls) {
    try {
      const parsed = new URL(url);
      if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new Error("protocol");
    } catch {
      throw new ConfigError(
        `createServiceClient(${service.typeName}): url "${url}" is not valid; expected http://host:port or https://host:port`,
      );
    }
  }
  const connections = checkInt("connections", options.connections, 1, 1, 16);
  const defaultTimeoutMs = checkInt("timeoutMs", options.timeoutMs, 10_000, 1, 3_600_000);
  const attempts = checkInt("retry.attempts", options.retry?.attempts, 2, 1, 5);
  const ratio = options.retry?.ratio ?? 0.2;
  const reserve = options.retry?.reserve ?? 10;
  if (!(ratio >= 0 && ratio <= 1) || !(reserve >= 0 && reserve <= 1000)) {
    throw new ConfigError(`createServiceClient: retry ratio ${ratio} / reserve ${reserve} not valid; expected 0–1 and 0–1000`);
  }
  if (options.protocol !== undefined && options.protocol !== "connect" && options.protocol !== "grpc") {
    throw new ConfigError(`createServiceClient: protocol "${options.protocol}" is not valid; expected "connect" or "grpc"`);
  }
  const circuit = createCircuitBreaker(options.circuit);
  const signer = options.signer;
  let budget = reserve;

  const identity: Interceptor = (next) => (req) => {
    const out = req.contextValues.get(outgoingKey);
    const caller = out?.caller;
    // A user is passed on with the assertion it came with; the chain after the gateway goes in `act`.
    if (caller?.user !== undefined && caller.assertion !== undefined) {
      req.header.set(identityHeaders.assertion, caller.assertion);
      req.header.set(
        identityHeaders.service,
        signer.serviceToken(
          name,
          caller.chain.filter((s) => s !== GATEWAY_SERVICE),
        ),
      );
    } else {
      req.header.set(identityHeaders.service, signer.serviceToken(name));
    }
    req.header.set("x-request-id", out?.requestId ?? randomUUID());
    // With tracing on, the client span's traceparent is already set (tracingClientInterceptor).
    if (!req.header.has("traceparent")) req.header.set("traceparent", childTraceparent(out?.traceparent));
    return next(req);
  };

  const managers: Http2SessionManager[] = [];
  const replicas: Replica[] = urls.map((url) => ({
    turn: 0,
    restUntil: 0,
    transports: Array.from({ length: connections }, () => {
      const sessionManager = new Http2SessionManager(url, { pingIntervalMs: 30_000, idleConnectionTimeoutMs: 60_000 });
      managers.push(sessionManager);
      const transportOptions = {
        baseUrl: url,
        httpVersion: "2" as const,
        sessionManager,
        interceptors: [tracingClientInterceptor, identity, ...(options.interceptors ?? [])],
      };
      return options.protocol === "grpc"
        ? createGrpcTransport(transportOptions)
        : createConnectTransport({ ...transportOptions, useBinaryFormat: true });
    }),
  }));
  let turn = 0;
  /** The next replica in turn that is not resting, another than `failed` first; when all rest, any. */
  const pickReplica = (failed: Replica | undefined): Replica => {
    const now = Date.now();
    const start = turn++ % replicas.length;
    let resting: Replica | undefined;
    for (let i = 0; i < replicas.length; i++) {
      const replica = replicas[(start + i) % replicas.length] as Replica;
      if (replica === failed) continue;
      if (replica.restUntil <= now) return replica;
      resting ??= replica;
    }
    // Every replica was passed: `failed` is the only one, or they all rest.
    return (resting ?? failed) as Replica;
  };

  /**
   * One call through the circuit breaker, retried within the budget when it met `unavailable` and
   * is idempotent, or is unary and its connection was refused (nothing was sent, as Envoy's
   * `connect-failure`); every try gets what is left of the call's own deadline.
   */
  const send = async <T>(
    method: DescMethod,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    attempt: (t: Transport, timeoutMs: number | undefined) => Promise<T>,
  ) => {
    const admitted = circuit.admit();
    if (!admitted.ok) {
      throw new ConnectError(
        `${name} is failing: circuit open, next try in ${Math.ceil(admitted.retryInMs / 1000)} s`,
        Code.Unavailable,
      );
    }
    budget = Math.min(reserve, budget + ratio);
    const idempotent = isIdempotent(method);
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    let replica: Replica | undefined;
    for (let tries = 1; ; tries++) {
      replica = pickReplica(replica);
      const left = deadline === undefined ? undefined : Math.max(1, deadline - Date.now());
      try {
        const res = await attempt(replica.transports[replica.turn++ % connections] as Transport, left);
        circuit.success();
        return res;
      } catch (error) {
        const e = ConnectError.from(error);
        if (e.code === Code.Unavailable && replicas.length > 1) replica.restUntil = Date.now() + replicaRestMs;
        const again =
          (idempotent || (method.methodKind === "unary" && connectionRefused(e))) &&
          e.code === Code.Unavailable &&
          tries < attempts &&
          budget >= 1 &&
          signal?.aborted !== true &&
          (deadline === undefined || deadline > Date.now());
        if (!again) {
          if (e.code === Code.Unavailable || e.code === Code.DeadlineExceeded) circuit.failure();
          else circuit.success();
          throw e;
        }
        budget -= 1;
      }
    }
  };
  const pooled: Transport = {
    unary: (method, signal, timeoutMs, header, input, contextValues) =>
      send(method, signal, timeoutMs, (t, left) => t.unary(method, signal, left, header, input, contextValues)),
    stream: (method, signal, timeoutMs, header, input, contextValues) =>
      send(method, signal, timeoutMs, (t, left) => t.stream(method, signal, left, header, input, contextValues)),
  };
  const base = createClient(service, pooled);

  const withOptions = (derive: () => CallOptions): Client<S> => {
    const client: Record<string, unknown> = {};
    for (const method of service.methods) {
      const call = base[method.localName as keyof typeof base] as unknown as (req: unknown, o?: CallOptions) => unknown;
      client[method.localName] = (req: unknown, extra?: CallOptions) => {
        let derived: CallOptions;
        try {
          derived = derive();
        } catch (error) {
          if (method.methodKind === "unary") return Promise.reject(error);
          return (async function* () {
            yield* [];
            throw error;
          })();
        }
        return call(req, { ...derived, ...extra });
      };
    }
    return client as Client<S>;
  };

  return {
    name,
    urls,
    for(ctx) {
      return withOptions(() => {
        const remaining = ctx.timeoutMs();
        if (remaining !== undefined && remaining <= 0) {
          throw new ConnectError(`no time left to call ${name}: the caller's deadline has passed`, Code.DeadlineExceeded);
        }
        const contextValues = createContextValues();
        contextValues.set(outgoingKey, {
          caller: ctx.values.get(callerKey),
          requestId: ctx.requestHeader.get("x-request-id") ?? undefined,
          traceparent: ctx.requestHeader.get("traceparent") ?? undefined,
        });
        return { timeoutMs: remaining ?? defaultTimeoutMs, signal: ctx.signal, contextValues };
      });
    },
    self: withOptions(() => ({ timeoutMs: defaultTimeoutMs })),
    close() {
      for (const manager of managers) manager.abort();
    },
  };
}
