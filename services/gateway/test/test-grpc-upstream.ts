// Test helper (not a test): GreeterService on a plain @grpc/grpc-js server, as a gRPC-only
// backend in "another language" would be: binary protobuf over gRPC, nothing else.

import { createPublicKey, verify } from "node:crypto";
import { create, type DescMessage, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  EchoRequestSchema,
  EchoResponseSchema,
  GreetRequestSchema,
  GreetResponseSchema,
  GreetStreamRequestSchema,
  GreetStreamResponseSchema,
  ListGreetingsRequestSchema,
  ListGreetingsResponseSchema,
} from "@portico/gen/portico/greeter/v1/greeter_pb.js";

export interface GrpcUpstream {
  url: string;
  /** Metadata of the last call each method received. */
  seen: Map<string, grpc.Metadata>;
  /** Deadlines (ms remaining when the call arrived) of the last call per method. */
  deadlines: Map<string, number>;
  /** Calls cancelled by the client. */
  cancelled: string[];
  /** Calls received, by method. */
  calls: Map<string, number>;
  /**
   * Verifies the user's assertion of every Greet against these public keys (the gateway's
   * `/.well-known/jwks.json`) and greets with its user; until set, Greet says "(user ?)".
   */
  trustJwksAt(url: string): void;
  /** Drops every connection at once, as a crash would. */
  kill(): void;
  close(): Promise<void>;
}

function serializers<I extends DescMessage, O extends DescMessage>(input: I, output: O) {
  return {
    requestSerialize: (m: MessageShape<I>) => Buffer.from(toBinary(input, m)),
    requestDeserialize: (b: Buffer) => fromBinary(input, b),
    responseSerialize: (m: MessageShape<O>) => Buffer.from(toBinary(output, m)),
    responseDeserialize: (b: Buffer) => fromBinary(output, b),
  };
}

const path = (m: string) => `/portico.greeter.v1.GreeterService/${m}`;

interface Jwk {
  kid?: string;
  [field: string]: unknown;
}

const fromBase64Url = (part: string | undefined) => JSON.parse(Buffer.from(part ?? "", "base64url").toString("utf8"));

/**
 * The user (`sub`) of the gateway's assertion, verified as README's "What a backend receives" tells a
 * backend in another language to: a key of the gateway's (`kid` `gateway.<id>`) from its JWKS, EdDSA,
 * `typ`, `iss`, `aud` this service, `exp`. Here with node:crypto alone, as a non-JavaScript backend would
 * with its own JOSE library. Throws why an assertion is refused.
 */
async function verifiedUser(assertion: string, keyOf: (kid: string) => Promise<Jwk | undefined>): Promise<string> {
  const [head, body, signature] = assertion.split(".");
  const header = fromBase64Url(head) as { alg?: string; typ?: string; kid?: string };
  if (header.alg !== "EdDSA" || header.typ !== "portico-user+jwt") throw new Error("not a user assertion");
  if (typeof header.kid !== "string" || !header.kid.startsWith("gateway.")) throw new Error("not signed by a gateway key");
  const jwk = await keyOf(header.kid);
  if (jwk === undefined) throw new Error(`no key ${header.kid}`);
  const signed = Buffer.from(`${head}.${body}`);
  if (!verify(null, signed, createPublicKey({ key: jwk, format: "jwk" }), Buffer.from(signature ?? "", "base64url"))) {
    throw new Error("bad signature");
  }
  const claims = fromBase64Url(body) as { iss?: string; aud?: string; exp?: number; sub?: string };
  if (claims.iss !== "gateway" || claims.aud !== "greeter") throw new Error("not an assertion for the greeter");
  if (typeof claims.exp !== "number" || claims.exp * 1000 < Date.now()) throw new Error("expired");
  return claims.sub ?? "";
}

/** A grpc-js GreeterService on `port` (0: a free one); with `tls`, over TLS (its url is then https://). */
export async function startGrpcUpstream(port = 0, tls?: { cert: string; key: string }): Promise<GrpcUpstream> {
  const calls = new Map<string, number>();
  const seen = new Map<string, grpc.Metadata>();
  const deadlines = new Map<string, number>();
  const cancelled: string[] = [];
  let jwksUrl: string | undefined;
  let keys: Jwk[] = [];
  /** The gateway's keys, kept: fetched again only for a kid not held (keys rotate), as README asks of a backend. */
  const keyOf = async (kid: string) => {
    const held = keys.find((k) => k.kid === kid);
    if (held !== undefined || jwksUrl === undefined) return held;
    keys = ((await (await fetch(jwksUrl)).json()) as { keys: Jwk[] }).keys;
    return keys.find((k) => k.kid === kid);
  };
  const record = (method: string, call: { metadata: grpc.Metadata; getDeadline(): grpc.Deadline }) => {
    seen.set(method, call.metadata);
    calls.set(method, (calls.get(method) ?? 0) + 1);
    const deadline = call.getDeadline();
    deadlines.set(method, deadline instanceof Date ? deadline.getTime() - Date.now() : Number(deadline) - Date.now());
  };
  const server = new grpc.Server();
  const definition: grpc.ServiceDefinition = {
    greet: {
      path: path("Greet"),
      requestStream: false,
      responseStream: false,
      ...serializers(GreetRequestSchema, GreetResponseSchema),
    },
    greetStream: {
      path: path("GreetStream"),
      requestStream: false,
      responseStream: true,
      ...serializers(GreetStreamRequestSchema, GreetStreamResponseSchema),
    },
    listGreetings: {
      path: path("ListGreetings"),
      requestStream: false,
      responseStream: false,
      ...serializers(ListGreetingsRequestSchema, ListGreetingsResponseSchema),
    },
    echo: {
      path: path("Echo"),
      requestStream: false,
      responseStream: false,
      ...serializers(EchoRequestSchema, EchoResponseSchema),
    },
  };
  server.addService(definition, {
    greet(call: grpc.ServerUnaryCall<{ name: string }, unknown>, callback: grpc.sendUnaryData<unknown>) {
      record("Greet", call);
      const name = call.request.name;
      if (name === "fail") {
        callback({ code: grpc.status.FAILED_PRECONDITION, details: "greeting refused" });
        return;
      }
      const respond = (user: string) => {
        const md = new grpc.Metadata();
        md.set("x-upstream", "grpc-js");
        call.sendMetadata(md);
        callback(null, create(GreetResponseSchema, { greeting: `Hello, ${name}! (user ${user})` }));
      };
      const greet = (user: string) => {
        if (name === "slow") {
          const timer = setTimeout(() => respond(user), 3000);
          call.on("cancelled", () => {
            clearTimeout(timer);
            cancelled.push("Greet");
          });
        } else respond(user);
      };
      const assertion = call.metadata.get("x-portico-identity")[0];
      if (jwksUrl === undefined || typeof assertion !== "string") {
        greet("?");
        return;
      }
      verifiedUser(assertion, keyOf).then(greet, (error: Error) =>
        callback({ code: grpc.status.UNAUTHENTICATED, details: `x-portico-identity refused: ${error.message}` }),
      );
    },
    greetStream(call: grpc.ServerWritableStream<{ name: string; count: number; intervalMs: number }, unknown>) {
      record("GreetStream", call);
      const { name, count, intervalMs } = call.request;
      let i = 0;
      let stopped = false;
      call.on("cancelled", () => {
        stopped = true;
        cancelled.push("GreetStream");
      });
      const next = () => {
        if (stopped) return;
        if (i >= count) {
          call.end();
          return;
        }
        call.write(create(GreetStreamResponseSchema, { greeting: `Hello, ${name}!`, index: i++ }));
        if (intervalMs > 0) setTimeout(next, intervalMs);
        else setImmediate(next);
      };
      next();
    },
    listGreetings(call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) {
      record("ListGreetings", call);
      callback(null, create(ListGreetingsResponseSchema, { greetings: [{ id: "1", message: "from grpc-js" }] }));
    },
    echo(call: grpc.ServerUnaryCall<{ payload: Uint8Array }, unknown>, callback: grpc.sendUnaryData<unknown>) {
      record("Echo", call);
      callback(null, create(EchoResponseSchema, { payload: call.request.payload }));
    },
  });
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      `127.0.0.1:${port}`,
      tls
        ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(tls.cert), private_key: Buffer.from(tls.key) }])
        : grpc.ServerCredentials.createInsecure(),
      (err, p) => (err ? reject(err) : resolve(p)),
    ),
  );
  return {
    url: `${tls ? "https" : "http"}://127.0.0.1:${bound}`,
    seen,
    calls,
    trustJwksAt(url) {
      jwksUrl = url;
      keys = [];
    },
    kill: () => server.forceShutdown(),
    deadlines,
    cancelled,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 1000).unref();
      }),
  };
}
