// W1–W7 of issue 6 and W8 of issue 11: what each workload sends, how hard, and to which targets.
import { create, type DescMessage, type MessageShape, toBinary } from "@bufbuild/protobuf";
import { EchoRequestSchema, EchoStreamRequestSchema } from "@portico/gen/portico/greeter/v1/greeter_pb.js";
import { type HostileAttack, hostileAttacks } from "./bench-hostile-client.js";

export type TargetName = "direct" | "nginx" | "nginx-auth" | "gateway";
export const allTargets: TargetName[] = ["direct", "nginx", "nginx-auth", "gateway"];

export interface Workload {
  id: "W1" | "W2" | "W3" | "W4" | "W5" | "W6" | "W7" | "W8";
  title: string;
  protocol: "connect" | "grpc";
  path: string;
  /** Protocol headers (content type and friends), without credentials. */
  headers: Record<string, string>;
  body: Buffer;
  /** How h2load drives it; W6 has its own client instead. */
  load:
    | { kind: "h2load-duration"; clients: number; streams: number }
    | {
        kind: "h2load-paced";
        clients: number;
        rpsPerClient: number;
        callsPerClient: number;
        connectRate: { count: number; periodMs: number };
      }
    | { kind: "fresh-tokens"; tokens: number; connections: number; concurrency: number }
    | {
        kind: "hostile-neighbour";
        clients: number;
        streams: number;
        /** Phases after the one alone, each a set of attacks run at once beside the clients. */
        phases: HostileAttack[][];
        /**
         * The attacker's own address (the well-behaved clients connect from 127.0.0.1): one client
         * attacking, as from another host, so that per-address defences can tell it from the others.
         */
        attackerAddress: string;
        /** The calls the hostile streams make: `reset` (rapid-reset, continuation-flood) and `stalled` (zero-window). */
        hostileCalls: Record<"reset" | "stalled", { path: string; headers: Record<string, string>; body: Buffer }>;
      };
  /**
   * Rounds with the targets interleaved, unless --rounds says otherwise: 3 in a full run (issue 16's
   * targets are the median of three rounds), so one noisy minute on a shared machine does not decide.
   */
  rounds: number;
  /** Messages answered per call (W4 streams). */
  messagesPerCall: number;
  targets: TargetName[];
}

const echoPath = "/portico.greeter.v1.GreeterService/Echo";
const grpcHeaders = { "content-type": "application/grpc", te: "trailers" };
const connectJsonHeaders = { "content-type": "application/json", "connect-protocol-version": "1" };

/** A gRPC length-prefixed message: flag byte, 4-byte big-endian length, the bytes. */
export function grpcEnvelope<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): Buffer {
  const bytes = toBinary(schema, message);
  const frame = Buffer.alloc(5 + bytes.length);
  frame.writeUInt32BE(bytes.length, 1);
  frame.set(bytes, 5);
  return frame;
}

const smallPayload = Buffer.from("portico bench 16");

export interface WorkloadScale {
  smoke: boolean;
  /** W8's phases under attack (--attacks); default each attack on its own, or one mix of all in --smoke. */
  attacks?: HostileAttack[][];
}

/** A W8 phase's name: the attack, or `mix` when several run at once. */
export function phaseName(attacks: HostileAttack[]): string {
  return attacks.length === 1 ? (attacks[0] as string) : attacks.length === 0 ? "alone" : "mix";
}

export function defineWorkloads({ smoke, attacks }: WorkloadScale): Workload[] {
  const smallGrpc = grpcEnvelope(EchoRequestSchema, create(EchoRequestSchema, { payload: smallPayload }));
  const smallJson = Buffer.from(JSON.stringify({ payload: smallPayload.toString("base64") }));
  return [
    {
      id: "W1",
      title: "Connect unary JSON, 16 B payload, 32 connections",
      protocol: "connect",
      path: echoPath,
      headers: connectJsonHeaders,
      body: smallJson,
      load: { kind: "h2load-duration", clients: 32, streams: 1 },
      rounds: smoke ? 1 : 3,
      messagesPerCall: 1,
      targets: allTargets,
    },
    {
      id: "W2",
      title: "gRPC unary binary, 16 B payload, 32 connections",
      protocol: "grpc",
      path: echoPath,
      headers: grpcHeaders,
      body: smallGrpc,
      load: { kind: "h2load-duration", clients: 32, streams: 1 },
      rounds: smoke ? 1 : 3,
      messagesPerCall: 1,
      targets: allTargets,
    },
    {
      id: "W3",
      title: "gRPC unary, 64 KiB each way, 16 connections",
      protocol: "grpc",
      path: echoPath,
      headers: grpcHeaders,
      body: grpcEnvelope(EchoRequestSchema, create(EchoRequestSchema, { payload: Buffer.alloc(64 * 1024, 0x61) })),
      load: { kind: "h2load-duration", clients: 16, streams: 1 },
      rounds: smoke ? 1 : 3,
      messagesPerCall: 1,
      targets: allTargets,
    },
    {
      id: "W4",
      title: "gRPC server streaming, 1,000 messages of 16 B per call, 8 connections",
      protocol: "grpc",
      path: "/portico.greeter.v1.GreeterService/EchoStream",
      headers: grpcHeaders,
      body: grpcEnvelope(EchoStreamRequestSchema, create(EchoStreamRequestSchema, { payload: smallPayload, count: 1000 })),
      load: { kind: "h2load-duration", clients: 8, streams: 1 },
      rounds: smoke ? 1 : 3,
      messagesPerCall: 1000,
      targets: allTargets,
    },
    {
      id: "W5",
      title: smoke
        ? "gRPC unary, 1,000 connections, 1 call/s each (smoke: 1 call per connection)"
        : "gRPC unary, 1,000 connections, one call every 2 s each (500 calls/s)",
      protocol: "grpc",
      path: echoPath,
      headers: grpcHeaders,
      body: smallGrpc,
      // Connections open a few every 4 ms, so their call timers do not all fire at once.
      load: smoke
        ? { kind: "h2load-paced", clients: 1000, rpsPerClient: 1, callsPerClient: 1, connectRate: { count: 4, periodMs: 4 } }
        : { kind: "h2load-paced", clients: 1000, rpsPerClient: 0.5, callsPerClient: 8, connectRate: { count: 2, periodMs: 4 } },
      rounds: smoke ? 1 : 3,
      messagesPerCall: 1,
      targets: allTargets,
    },
    {
      id: "W6",
      title: `Connect unary JSON, a new access token on every call (${smoke ? 300 : 4000} tokens, 32 in flight)`,
      protocol: "connect",
      path: echoPath,
      headers: connectJsonHeaders,
      body: smallJson,
      load: { kind: "fresh-tokens", tokens: smoke ? 300 : 4000, connections: 8, concurrency: 32 },
      rounds: smoke ? 1 : 3,
      messagesPerCall: 1,
      targets: ["nginx-auth", "gateway"],
    },
    {
      id: "W7",
      title: "gRPC unary, 1 connection, one call at a time",
      protocol: "grpc",
      path: echoPath,
      headers: grpcHeaders,
      body: smallGrpc,
      load: { kind: "h2load-duration", clients: 1, streams: 1 },
      rounds: smoke ? 1 : 3,
      messagesPerCall: 1,
      targets: allTargets,
    },
    {
      id: "W8",
      title: "hostile neighbour: W2's 32 connections alone, then beside one hostile connection per attack",
      protocol: "grpc",
      path: echoPath,
      headers: grpcHeaders,
      body: smallGrpc,
      load: {
        kind: "hostile-neighbour",
        clients: 32,
        streams: 1,
        phases: attacks ?? (smoke ? [[...hostileAttacks]] : hostileAttacks.map((attack) => [attack])),
        attackerAddress: "127.0.0.2",
        hostileCalls: {
          reset: { path: echoPath, headers: grpcHeaders, body: smallGrpc },
          // 10,000 answers of 1 KiB each that the hostile reader never takes.
          stalled: {
            path: "/portico.greeter.v1.GreeterService/EchoStream",
            headers: grpcHeaders,
            body: grpcEnvelope(
              EchoStreamRequestSchema,
              create(EchoStreamRequestSchema, { payload: Buffer.alloc(1024, 0x62), count: 10_000 }),
            ),
          },
        },
      },
      rounds: smoke ? 1 : 3,
      messagesPerCall: 1,
      // The gateway's fairness; nginx has had these limits for years.
      targets: ["gateway"],
    },
  ];
}
