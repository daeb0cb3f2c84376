// Test helper (not a test): GreeterService on a plain @grpc/grpc-js server, as a gRPC-only
// backend in "another language" would be: binary protobuf over gRPC, nothing else.
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

/**
 * The user of the gateway's assertion (`sub`), read without checking its signature: enough for
 * this test server to show whom a call came for. A real backend verifies it against the trust
 * bundle (README, "What a backend receives").
 */
function assertedUser(metadata: grpc.Metadata): string {
  const assertion = metadata.get("x-portico-identity")[0];
  if (typeof assertion !== "string") return "?";
  const payload = JSON.parse(Buffer.from(assertion.split(".")[1] ?? "", "base64url").toString("utf8")) as { sub?: string };
  return payload.sub ?? "?";
}

/** A grpc-js GreeterService on `port` (0: a free one); with `tls`, over TLS (its url is then https://). */
export async function startGrpcUpstream(port = 0, tls?: { cert: string; key: string }): Promise<GrpcUpstream> {
  const calls = new Map<string, number>();
  const seen = new Map<string, grpc.Metadata>();
  const deadlines = new Map<string, number>();
  const cancelled: string[] = [];
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
      const respond = () => {
        const md = new grpc.Metadata();
        md.set("x-upstream", "grpc-js");
        call.sendMetadata(md);
        callback(null, create(GreetResponseSchema, { greeting: `Hello, ${name}! (user ${assertedUser(call.metadata)})` }));
      };
      if (name === "slow") {
        const timer = setTimeout(respond, 3000);
        call.on("cancelled", () => {
          clearTimeout(timer);
          cancelled.push("Greet");
        });
      } else respond();
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
