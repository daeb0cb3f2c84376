// The auth service called directly: Authenticate (target ≥ 3,000 calls/s) and Login (argon2id-bound, reported).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { AuthenticateRequestSchema } from "@portico/gen/portico/auth/v1/auth_pb.js";
import type { BenchUser } from "./bench-accounts.js";
import { runH2load } from "./bench-h2load.js";
import { h2loadErrors, missingAnswers } from "./bench-measure.js";
import type { BenchOptions } from "./bench-options.js";
import type { BenchProcess } from "./bench-platform.js";
import { type CallSpec, probe } from "./bench-probe.js";
import { startProcessMeter } from "./bench-process-meter.js";
import type { AuthRun } from "./bench-report.js";
import { grpcEnvelope } from "./bench-workloads.js";

export interface AuthBenchOptions {
  authOrigin: string;
  auth: BenchProcess;
  user: BenchUser;
  accessToken: string;
  /** The gateway's service token for auth: Authenticate answers only the gateway (its `callers`). */
  gatewayServiceToken: () => string;
  workDir: string;
  options: BenchOptions;
}

const authPath = (method: string) => `/portico.auth.v1.AuthService/${method}`;

const connectJsonCall = (origin: string, method: string, message: unknown): CallSpec => ({
  origin,
  path: authPath(method),
  protocol: "connect",
  headers: { "content-type": "application/json", "connect-protocol-version": "1" },
  body: Buffer.from(JSON.stringify(message)),
});

interface AuthLoad {
  name: AuthRun["name"];
  description: string;
  spec: CallSpec;
  clients: number;
  durationSeconds?: number;
  requests?: number;
  /** Whether every answer is the same bytes (Authenticate), so the body can be checked by size. */
  constantAnswer: boolean;
}

async function measureAuthCall(load: AuthLoad, { auth, workDir, options }: AuthBenchOptions): Promise<AuthRun> {
  const { name, description, spec } = load;
  const before = await probe(spec);
  if (!before.ok) {
    const nan = { p50: Number.NaN, p90: Number.NaN, p99: Number.NaN, max: Number.NaN };
    return {
      name,
      description,
      calls: 0,
      rps: Number.NaN,
      latencyMs: nan,
      cpuMicrosPerCall: Number.NaN,
      errors: 1,
      problems: [before.problem!],
      command: "",
    };
  }
  const bodyFile = join(workDir, `${name}.body`);
  writeFileSync(bodyFile, spec.body);
  const base = {
    url: `${spec.origin}${spec.path}`,
    headers: spec.headers,
    bodyFile,
    logFile: join(workDir, `${name}.log`),
    clients: load.clients,
  };
  if (load.durationSeconds !== undefined) await runH2load({ ...base, durationSeconds: options.warmupSeconds });
  const meter = startProcessMeter(auth.pid);
  const result = await runH2load({ ...base, durationSeconds: load.durationSeconds, requests: load.requests });
  const reading = meter.stop();
  const after = await probe(spec);
  const problems: string[] = [];
  let errors = h2loadErrors(result, problems) + (load.constantAnswer ? missingAnswers(result, before.body.length, problems) : 0);
  if (!after.ok) {
    errors++;
    problems.push(`after the run: ${after.problem}`);
  }
  const calls = result.requests.done;
  return {
    name,
    description,
    calls,
    rps: result.rps,
    latencyMs: result.latencyMs,
    cpuMicrosPerCall: calls > 0 ? reading.cpuMicros / calls : Number.NaN,
    errors,
    problems,
    command: result.command,
  };
}

export async function benchAuthService(options: AuthBenchOptions): Promise<AuthRun[]> {
  const { authOrigin, user, accessToken, gatewayServiceToken } = options;
  const logins = options.options.smoke ? 6 : 60;
  return [
    await measureAuthCall(
      {
        name: "Authenticate",
        description: "gRPC binary as the gateway calls it, the same token on every call, 16 connections",
        spec: {
          origin: authOrigin,
          path: authPath("Authenticate"),
          protocol: "grpc",
          headers: { "content-type": "application/grpc", te: "trailers", "x-portico-service": gatewayServiceToken() },
          body: grpcEnvelope(AuthenticateRequestSchema, create(AuthenticateRequestSchema, { accessToken })),
        },
        clients: 16,
        durationSeconds: options.options.durationSeconds,
        constantAnswer: true,
      },
      options,
    ),
    await measureAuthCall(
      {
        name: "Login",
        description: `Connect JSON, argon2id, ${logins} logins over 2 connections`,
        spec: connectJsonCall(authOrigin, "Login", { email: user.email, password: user.password }),
        clients: 2,
        requests: logins,
        constantAnswer: false,
      },
      options,
    ),
  ];
}
