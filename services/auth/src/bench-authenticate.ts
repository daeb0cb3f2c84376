import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as http2 from "node:http2";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { create, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AuthenticateRequestSchema, AuthService } from "@portico/gen/portico/auth/v1/auth_pb.js";
import { ensureLocalKeys, freePort, loadServiceIdentity, startEmbeddedPostgres } from "@portico/kit";

// Authenticate throughput of one auth process, measured from another process:
//   node --conditions=source --import tsx services/auth/src/bench-authenticate.ts [seconds] [concurrency]
// Runs twice: with the verified-token cache (the same tokens again and again) and without it (every
// call checks an ES256 signature, as for a gateway whose own cache misses).
const seconds = Number(process.argv[2] ?? 10);
const concurrency = Number(process.argv[3] ?? 32);
const TOKENS = 200;
const CONNECTIONS = 2;

async function waitHealthy(url: string) {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const session = http2.connect(url);
      session.on("error", () => resolve(false));
      const req = session.request({ ":path": "/healthz" });
      req.on("response", (h) => resolve(h[":status"] === 200));
      req.on("error", () => resolve(false));
      req.on("close", () => session.close());
      req.end();
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`auth did not become healthy at ${url}`);
}

function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, in clock ticks of 10 ms
}

async function run(cacheSize: number) {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "portico-auth-bench-"));
  chmodSync(dataDir, 0o755); // the embedded server runs as the postgres user under root
  // A fresh embedded PostgreSQL, or a database of its own on DATABASE_URL's server.
  const embedded = process.env.DATABASE_URL
    ? undefined
    : await startEmbeddedPostgres({ dataDir: join(dataDir, "postgres"), port: 0 });
  const databaseUrl = new URL(embedded?.url ?? (process.env.DATABASE_URL as string));
  databaseUrl.pathname = `/portico_auth_bench_${process.pid}_${cacheSize}`;
  const main = fileURLToPath(new URL("./main.ts", import.meta.url));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AUTH_PORT: String(port),
    PORTICO_DATA_DIR: dataDir,
    LOG_LEVEL: "warn",
    AUTH_TOKEN_CACHE_SIZE: String(cacheSize),
  };
  delete env.DATABASE_URL;
  // Authenticate answers only the gateway: the calls carry the gateway's service token, signed with
  // a gateway key that the auth process's trust bundle holds (both made here, as npm start makes them).
  ensureLocalKeys(dataDir, ["auth", "gateway"]);
  const gateway = loadServiceIdentity("gateway", dataDir, {});
  env.AUTH_DATABASE_URL = databaseUrl.toString();
  const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", main], { env, stdio: "inherit" });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitHealthy(url);
    const clients = Array.from({ length: CONNECTIONS }, () => createClient(AuthService, createGrpcTransport({ baseUrl: url })));
    const signup = await clients[0]!.signUp({
      email: `bench.${Date.now()}@example.com`,
      password: "correct horse battery staple",
      displayName: "",
    });
    const tokens: string[] = [signup.tokens!.accessToken];
    let refresh = signup.tokens!.refreshToken;
    while (tokens.length < TOKENS) {
      const next = await clients[0]!.refresh({ refreshToken: refresh });
      tokens.push(next.tokens!.accessToken);
      refresh = next.tokens!.refreshToken;
    }
    // The load itself goes over raw HTTP/2 with pre-encoded gRPC requests, so the client costs little
    // of the two shared cores and the number shows what the auth process can serve.
    const bodies = tokens.map((accessToken) => {
      const message = toBinary(AuthenticateRequestSchema, create(AuthenticateRequestSchema, { accessToken }));
      const envelope = Buffer.alloc(5 + message.length);
      envelope.writeUInt32BE(message.length, 1);
      envelope.set(message, 5);
      return envelope;
    });
    const sessions = Array.from({ length: CONNECTIONS }, () => http2.connect(url));
    const call = (session: http2.ClientHttp2Session, body: Buffer) =>
      new Promise<boolean>((resolve) => {
        const req = session.request({
          ":method": "POST",
          ":path": "/portico.auth.v1.AuthService/Authenticate",
          "content-type": "application/grpc+proto",
          te: "trailers",
          "x-portico-service": gateway.signer.serviceToken("auth"),
        });
        let status: string | undefined;
        req.on("response", (h) => (status = h["grpc-status"] as string | undefined));
        req.on("trailers", (h) => (status = h["grpc-status"] as string | undefined));
        req.on("data", () => undefined);
        req.on("close", () => resolve(status === "0"));
        req.on("error", () => resolve(false));
        req.end(body);
      });
    let calls = 0;
    let failures = 0;
    const latencies: number[] = [];
    const measure = async (durationMs: number, record: boolean) => {
      const end = performance.now() + durationMs;
      await Promise.all(
        Array.from({ length: concurrency }, async (_, worker) => {
          const session = sessions[worker % CONNECTIONS]!;
          let i = worker;
          while (performance.now() < end) {
            const started = performance.now();
            const ok = await call(session, bodies[i++ % bodies.length]!);
            if (!ok) failures++;
            else if (record) {
              calls++;
              latencies.push(performance.now() - started);
            }
          }
        }),
      );
    };
    await measure(2_000, false);
    const cpuBefore = cpuMs(child.pid!);
    const started = performance.now();
    await measure(seconds * 1000, true);
    const elapsed = (performance.now() - started) / 1000;
    const cpu = cpuMs(child.pid!) - cpuBefore;
    for (const session of sessions) session.close();
    latencies.sort((a, b) => a - b);
    const pct = (p: number) => latencies[Math.floor((latencies.length - 1) * p)]?.toFixed(2);
    return {
      mode: cacheSize > 0 ? "token cache on" : "token cache off (signature check per call)",
      callsPerSecond: Math.round(calls / elapsed),
      serverCpuMicrosPerCall: Math.round((cpu * 1000) / Math.max(1, calls)),
      p50Ms: pct(0.5),
      p99Ms: pct(0.99),
      failures,
    };
  } finally {
    child.kill("SIGTERM");
    await new Promise((resolve) => child.once("exit", resolve));
    await embedded?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const results = [await run(50_000), await run(0)];
console.log(
  `Authenticate, ${concurrency} concurrent gRPC calls over ${CONNECTIONS} HTTP/2 connections, ${seconds} s each (load avg ${loadavg()[0]?.toFixed(1)} on ${cpus().length} cores):`,
);
console.table(results);
// A refused call is a broken harness or service, not a slow one.
if (results.some((r) => r.failures > 0)) {
  console.error("some Authenticate calls failed: the numbers above do not measure the service");
  process.exitCode = 1;
}
