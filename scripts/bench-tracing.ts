// npm run bench -- --tracing: what tracing costs the gateway. Two gateways from the build in front of
// the same auth and greeter, one without tracing and one sending spans over OTLP/HTTP to a loopback
// sink at 10 % sampling (parentbased_traceidratio 0.1), driven in turn with W1 and W2 (rounds
// interleaved, the median reported): the gateway's CPU per call with and without, and the difference.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { signUp } from "./bench-accounts.js";
import { runH2load } from "./bench-h2load.js";
import type { BenchOptions } from "./bench-options.js";
import { type BenchProcess, benchDatabaseUrl, startGatewayProcess, startPlatform } from "./bench-platform.js";
import { startProcessMeter } from "./bench-process-meter.js";
import { defineWorkloads } from "./bench-workloads.js";

/** The sampling the issue asks to measure: 10 % of traces, children following their parent. */
export const tracingBenchEnv = {
  OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
  OTEL_TRACES_SAMPLER_ARG: "0.1",
};

/** An OTLP/HTTP receiver on loopback that only counts what it is sent. */
async function startOtlpSink() {
  let requests = 0;
  let bytes = 0;
  const server = http.createServer((req, res) => {
    req.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
    });
    req.on("end", () => {
      requests++;
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    counts: () => ({ requests, bytes }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Starts a gateway process with `env` added to what the benchmark gives it. */
async function withEnv<T>(env: Record<string, string>, start: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(env).map((name) => [name, process.env[name]]));
  Object.assign(process.env, env);
  try {
    return await start();
  } finally {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

interface Round {
  variant: "off" | "on";
  calls: number;
  failed: number;
  rps: number;
  cpuMicrosPerCall: number;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

/** Runs the tracing benchmark; the process exit code. */
export async function runTracingBench(root: string, options: BenchOptions): Promise<number> {
  const startedAt = new Date();
  const workDir = mkdtempSync(join(tmpdir(), "portico-bench-tracing-"));
  const stops: (() => Promise<void>)[] = [];
  let failed = false;
  try {
    const sink = await startOtlpSink();
    stops.push(sink.close);
    const databaseUrl = await benchDatabaseUrl(workDir, stops);
    const platformOptions = { root, dataDir: join(workDir, "data"), logDir: workDir, databaseUrl };
    console.log(`starting auth, greeter and two gateways from the build; logs in ${workDir}`);
    const platform = await startPlatform(platformOptions);
    stops.push(platform.stop);
    const traced = await withEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, ...tracingBenchEnv }, () =>
      startGatewayProcess(platformOptions, platform.ports, "gateway-traced"),
    );
    stops.push(() => traced.gateway.stop());
    const gateways: Record<Round["variant"], { proc: BenchProcess; url: string }> = {
      off: { proc: platform.gateway, url: `http://127.0.0.1:${platform.ports.gateway}` },
      on: { proc: traced.gateway, url: `http://127.0.0.1:${traced.ports.gateway}` },
    };
    const user = await signUp(gateways.off.url);
    const rounds = options.rounds ?? (options.smoke ? 1 : 3);
    const workloads = defineWorkloads({ smoke: options.smoke }).filter((w) =>
      options.only ? options.only.has(w.id) : w.id === "W1" || w.id === "W2",
    );
    const report: Record<string, { rounds: Round[]; offMicros: number; onMicros: number; pairedExtraMicros: number }> = {};
    for (const w of workloads) {
      if (w.load.kind !== "h2load-duration") {
        console.log(`${w.id}: not an h2load-duration workload; --tracing measures W1, W2, W3, W4, W5 and W7 only`);
        continue;
      }
      const bodyFile = join(workDir, `${w.id}.body`);
      writeFileSync(bodyFile, w.body);
      const results: Round[] = [];
      for (let round = 1; round <= rounds; round++) {
        // Interleaved, the order alternating, so a noisy minute on a shared machine hits both.
        const order: Round["variant"][] = round % 2 === 1 ? ["off", "on"] : ["on", "off"];
        for (const variant of order) {
          const { proc, url } = gateways[variant];
          const load = {
            url: `${url}${w.path}`,
            headers: { ...w.headers, authorization: `Bearer ${user.accessToken}` },
            bodyFile,
            clients: w.load.clients,
            streams: w.load.streams,
            logFile: join(workDir, `${w.id}-${variant}.log`),
          };
          await runH2load({ ...load, durationSeconds: options.warmupSeconds });
          const meter = startProcessMeter(proc.pid);
          const result = await runH2load({ ...load, durationSeconds: options.durationSeconds });
          const reading = meter.stop();
          const calls = result.requests.succeeded;
          const bad = result.requests.failed + result.requests.errored + result.logNon200;
          if (bad > 0 || calls === 0) failed = true;
          results.push({
            variant,
            calls,
            failed: bad,
            rps: Math.round(result.rps),
            cpuMicrosPerCall: calls > 0 ? reading.cpuMicros / calls : Number.NaN,
          });
          console.log(
            `  ${w.id} round ${round} tracing ${variant.padEnd(3)}: ${Math.round(result.rps)} calls/s, ` +
              `${(calls > 0 ? reading.cpuMicros / calls : Number.NaN).toFixed(1)} µs CPU per call, ${bad} failed`,
          );
        }
      }
      const offMicros = median(results.filter((r) => r.variant === "off").map((r) => r.cpuMicrosPerCall));
      const onMicros = median(results.filter((r) => r.variant === "on").map((r) => r.cpuMicrosPerCall));
      // Each round's on minus off (measured back to back): less noisy than the difference of the medians.
      const off = results.filter((r) => r.variant === "off");
      const pairedExtraMicros = median(
        results.filter((r) => r.variant === "on").map((r, i) => r.cpuMicrosPerCall - (off[i] as Round).cpuMicrosPerCall),
      );
      report[w.id] = { rounds: results, offMicros, onMicros, pairedExtraMicros };
    }

    const exported = sink.counts();
    console.log(
      `\nGateway CPU per call, tracing off vs on (OTLP/HTTP to a loopback sink, ${tracingBenchEnv.OTEL_TRACES_SAMPLER} ${tracingBenchEnv.OTEL_TRACES_SAMPLER_ARG}), median of ${rounds} round(s):`,
    );
    console.log(
      "| workload | off µs/call | on µs/call | extra µs/call (medians) | extra µs/call (median of rounds' on − off) | extra |",
    );
    console.log("|---|---:|---:|---:|---:|---:|");
    for (const [id, r] of Object.entries(report)) {
      const extra = r.onMicros - r.offMicros;
      console.log(
        `| ${id} | ${r.offMicros.toFixed(1)} | ${r.onMicros.toFixed(1)} | ${extra.toFixed(1)} | ${r.pairedExtraMicros.toFixed(1)} | ${((r.pairedExtraMicros / r.offMicros) * 100).toFixed(1)} % |`,
      );
    }
    console.log(`spans exported: ${exported.requests} OTLP requests, ${(exported.bytes / 1024).toFixed(0)} KiB`);
    const resultsDir = join(root, "bench/results");
    mkdirSync(resultsDir, { recursive: true });
    const file = join(resultsDir, `tracing-${startedAt.toISOString().replace(/[:.]/g, "-")}.json`);
    writeFileSync(
      file,
      `${JSON.stringify(
        {
          startedAt,
          cpus: cpus().length,
          cpuModel: cpus()[0]?.model,
          loadavg: loadavg(),
          sampling: tracingBenchEnv,
          exported,
          report,
        },
        null,
        2,
      )}\n`,
    );
    console.log(`wrote ${file}`);
    if (exported.requests === 0) {
      console.error("bench: the traced gateway exported no span: tracing did not run");
      failed = true;
    }
    return failed ? 1 : 0;
  } catch (error) {
    console.error(`bench: ${(error as Error).message}`);
    return 1;
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    if (!failed) rmSync(workDir, { recursive: true, force: true });
  }
}
