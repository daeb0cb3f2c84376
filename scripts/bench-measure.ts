// One workload against one target: load, the CPU and memory it cost, and every check that the
// answers were right (HTTP status, grpc-status, the exact body).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type H2loadOptions, type H2loadResult, type Latency, runH2load } from "./bench-h2load.js";
import { type HostileAttack, type HostileStats, startHostileClient } from "./bench-hostile-client.js";
import type { BenchOptions } from "./bench-options.js";
import type { BenchProcess } from "./bench-platform.js";
import { type CallSpec, firstMessageLatency, probe, startSampler } from "./bench-probe.js";
import { type MeterReading, startProcessMeter } from "./bench-process-meter.js";
import type { RunResult } from "./bench-report.js";
import { runTokenLoad } from "./bench-token-load.js";
import { phaseName, type TargetName, type Workload } from "./bench-workloads.js";

export interface Target {
  name: TargetName;
  origin: string;
  /** Headers that let the call in: a bearer token, or the identity assertion where nothing checks tokens. */
  credentials(): Record<string, string>;
  /** The proxy process (tree) in front of the greeter. */
  proxy?: BenchProcess;
  /** The process that checks tokens for this target. */
  auth?: BenchProcess;
}

export interface MeasureOptions {
  workDir: string;
  options: BenchOptions;
  greeter: BenchProcess;
  /** The greeter called directly: the reference answer of every workload. */
  direct: Target;
  /** W6's tokens for one round: new in each round, shared by every target of it. */
  freshTokens(count: number, round: number): Promise<string[]>;
}

const nanLatency: Latency = { p50: Number.NaN, p90: Number.NaN, p99: Number.NaN, max: Number.NaN };
const mb = (bytes: number) => bytes / (1024 * 1024);
const perCall = (reading: MeterReading | undefined, calls: number) =>
  reading && calls > 0 ? reading.cpuMicros / calls : undefined;

/** A run that could not happen, with why. */
export function failedRun(w: Workload, target: TargetName, problem: string): RunResult {
  return {
    workload: w.id,
    target,
    calls: 0,
    seconds: 0,
    rps: Number.NaN,
    messagesPerSecond: Number.NaN,
    latencyMs: nanLatency,
    cpuMicrosPerCall: {},
    peakRssMb: {},
    errors: 1,
    problems: [problem],
  };
}

/** The failures h2load saw, counted once each: transport errors, non-2xx, timeouts, 3xx, non-200 in its log. */
export function h2loadErrors(result: H2loadResult, problems: string[]): number {
  const { requests, status } = result;
  const httpErrors = requests.failed + requests.timeout + status["3xx"];
  if (httpErrors > 0) problems.push(`h2load: ${requests.failed} failed, ${requests.timeout} timed out, ${status["3xx"]} 3xx`);
  if (result.logNon200 > httpErrors) problems.push(`h2load log: ${result.logNon200} calls without HTTP 200`);
  return Math.max(httpErrors, result.logNon200);
}

/**
 * Every call h2load counted as a success must have received the whole expected answer: a gRPC
 * error travels in trailers (HTTP 200, no body), so missing response bytes are failed calls.
 * Calls still open when a timed run stops may have received part of theirs.
 */
export function missingAnswers(result: H2loadResult, expectedBytes: number, problems: string[]): number {
  const { succeeded, started } = result.requests;
  if (expectedBytes === 0) return 0;
  if (result.dataBytes < succeeded * expectedBytes) {
    const missing = Math.ceil((succeeded * expectedBytes - result.dataBytes) / expectedBytes);
    problems.push(
      `${result.dataBytes} response bytes for ${succeeded} calls of ${expectedBytes}: ${missing} answered without the message`,
    );
    return missing;
  }
  if (result.dataBytes > started * expectedBytes) {
    problems.push(`${result.dataBytes} response bytes, more than ${started} calls of ${expectedBytes} can answer`);
    return 1;
  }
  return 0;
}

export function createMeasurer({ workDir, options, greeter, direct, freshTokens }: MeasureOptions) {
  const expectedBodies = new Map<string, Buffer>();

  const specFor = (w: Workload, target: Target): CallSpec => ({
    origin: target.origin,
    path: w.path,
    protocol: w.protocol,
    headers: { ...w.headers, ...target.credentials() },
    body: w.body,
  });

  /** The exact answer of a workload's call, from the greeter called directly. */
  const expectedBody = async (w: Workload) => {
    let body = expectedBodies.get(w.id);
    if (!body) {
      const outcome = await probe(specFor(w, direct));
      if (!outcome.ok) throw new Error(`the greeter called directly fails: ${outcome.problem}`);
      body = outcome.body;
      expectedBodies.set(w.id, body);
    }
    return body;
  };

  const startMeters = (target: Target) => {
    const meters = {
      proxy: target.proxy ? startProcessMeter(target.proxy.pid) : undefined,
      auth: target.auth ? startProcessMeter(target.auth.pid) : undefined,
      greeter: startProcessMeter(greeter.pid),
    };
    return (calls: () => number) => {
      const proxy = meters.proxy?.stop();
      const auth = meters.auth?.stop();
      const greeterReading = meters.greeter.stop();
      const n = calls();
      return {
        cpuMicrosPerCall: { proxy: perCall(proxy, n), auth: perCall(auth, n), greeter: perCall(greeterReading, n) },
        peakRssMb: { proxy: proxy ? mb(proxy.peakRssBytes) : undefined, auth: auth ? mb(auth.peakRssBytes) : undefined },
      };
    };
  };

  /** W8: hostile clients against the target, one per attack, until stopped. */
  const startAttacks = (w: Workload, target: Target, attacks: HostileAttack[]) => {
    if (w.load.kind !== "hostile-neighbour" || attacks.length === 0) return undefined;
    const { hostileCalls, attackerAddress } = w.load;
    const clients = attacks.map((attack) => {
      const call = attack === "zero-window" ? hostileCalls.stalled : hostileCalls.reset;
      return startHostileClient({
        origin: target.origin,
        localAddress: attackerAddress,
        attack,
        request: { ...call, headers: { ...call.headers, ...target.credentials() } },
      });
    });
    return { stop: () => Promise.all(clients.map((c) => c.stop())) };
  };

  const withH2load = async (w: Workload, target: Target, expected: Buffer, attacks: HostileAttack[] = []): Promise<RunResult> => {
    const spec = specFor(w, target);
    const problems: string[] = [];
    let errors = 0;
    let failedCalls = 0;
    const bodyFile = join(workDir, `${w.id}.body`);
    writeFileSync(bodyFile, w.body);
    const base = {
      url: `${target.origin}${w.path}`,
      headers: spec.headers,
      bodyFile,
      logFile: join(workDir, `${w.id}-${target.name}.log`),
    };
    const clients = "clients" in w.load ? w.load.clients : 1;
    const warm = await runH2load({ ...base, clients: Math.min(clients, 32), durationSeconds: options.warmupSeconds });
    const warmErrors = h2loadErrors(warm, []);
    if (warmErrors > 0) {
      errors += warmErrors;
      problems.push(`${warmErrors} failed calls during the warm-up`);
    }
    const load: H2loadOptions =
      w.load.kind === "h2load-paced"
        ? {
            ...base,
            clients,
            rpsPerClient: w.load.rpsPerClient,
            requests: clients * w.load.callsPerClient,
            connectRate: w.load.connectRate,
          }
        : {
            ...base,
            clients,
            streams: "streams" in w.load ? w.load.streams : 1,
            durationSeconds: options.durationSeconds,
          };
    // A second client checks grpc-status and the body while h2load runs (not in W7: one call at a time).
    const attack = startAttacks(w, target, attacks);
    // Let the attack reach full strength before the well-behaved clients are measured.
    if (attack) await new Promise((resolve) => setTimeout(resolve, options.smoke ? 200 : 1000));
    const sampler = w.id === "W7" ? undefined : startSampler(spec, 200, expected);
    const stopMeters = startMeters(target);
    const result = await runH2load(load);
    const cost = stopMeters(() => result.requests.done);
    const sampled = await sampler?.stop();
    const hostile: HostileStats[] | undefined = await attack?.stop();
    // After an attack the target must serve again (within 10 s): a gateway that died is an error.
    let after = await probe(spec, expected);
    for (let i = 0; attack && !after.ok && i < 20; i++) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      after = await probe(spec, expected);
    }

    // Under attack, well-behaved calls that failed are what W8 measures, not errors of the harness.
    const failed = h2loadErrors(result, problems) + missingAnswers(result, expected.length, problems);
    if (attack) failedCalls += failed;
    else errors += failed;
    if (sampled && sampled.problems.length > 0) {
      if (attack) failedCalls += sampled.problems.length;
      else errors += sampled.problems.length;
      problems.push(`${sampled.problems.length} of ${sampled.calls} sampled calls failed: ${sampled.problems[0]}`);
    }
    if (!after.ok) {
      errors++;
      problems.push(`after the run${attack ? " and 10 s more" : ""}: ${after.problem}`);
    }
    if (result.requests.done === 0) {
      if (!attack) errors++;
      problems.push(attack ? "no well-behaved call completed under attack" : "no call completed");
    }
    // W8 counts the calls answered right: a call failed under attack is not throughput.
    const rps =
      w.load.kind === "hostile-neighbour" ? Math.max(0, result.requests.done - failedCalls) / result.seconds : result.rps;
    const run: RunResult = {
      workload: w.id,
      target: target.name,
      calls: result.requests.done,
      seconds: result.seconds,
      rps,
      messagesPerSecond: rps * w.messagesPerCall,
      latencyMs: result.latencyMs,
      ...cost,
      errors,
      problems,
      command: result.command,
    };
    if (w.load.kind === "hostile-neighbour") {
      run.phase = phaseName(attacks);
      run.failedCalls = failedCalls;
      if (hostile) run.hostile = hostile;
    }
    if (w.messagesPerCall > 1) {
      const first = await firstMessageLatency(spec, options.smoke ? 5 : 30);
      run.firstMessageMs = first.latency;
      if (first.problems.length > 0) {
        run.errors += first.problems.length;
        run.problems.push(`time-to-first-message calls: ${first.problems[0]}`);
      }
    }
    return run;
  };

  const withFreshTokens = async (w: Workload, target: Target, expected: Buffer, round: number): Promise<RunResult> => {
    if (w.load.kind !== "fresh-tokens") throw new Error(`${w.id} is not a fresh-token workload`);
    const tokens = await freshTokens(w.load.tokens, round);
    const spec = specFor(w, target);
    delete spec.headers.authorization;
    const stopMeters = startMeters(target);
    const result = await runTokenLoad({
      spec,
      expectedBody: expected,
      tokens,
      connections: w.load.connections,
      concurrency: w.load.concurrency,
    });
    const cost = stopMeters(() => result.calls);
    return {
      workload: w.id,
      target: target.name,
      calls: result.calls,
      seconds: result.seconds,
      rps: result.rps,
      messagesPerSecond: result.rps,
      latencyMs: result.latencyMs,
      ...cost,
      errors: result.failed,
      problems: result.failed > 0 ? [`${result.failed} of ${result.calls} calls failed: ${result.problems.join("; ")}`] : [],
      command: `node:http2 client, ${w.load.connections} connections, ${w.load.concurrency} calls in flight, one token per call`,
    };
  };

  return {
    /**
     * Runs round `round` (from 1) of `w` against `target` (W8: beside `attacks`); never rejects, a
     * failure is a run with errors.
     */
    async measure(
      w: Workload,
      target: Target,
      { round, attacks = [] }: { round: number; attacks?: HostileAttack[] },
    ): Promise<RunResult> {
      const failed = (problem: string) => {
        const run = failedRun(w, target.name, problem);
        if (w.load.kind === "hostile-neighbour") run.phase = phaseName(attacks);
        return run;
      };
      try {
        const expected = await expectedBody(w);
        const before = await probe(specFor(w, target), expected);
        if (!before.ok) return failed(`before the run: ${before.problem}`);
        return await (w.load.kind === "fresh-tokens"
          ? withFreshTokens(w, target, expected, round)
          : withH2load(w, target, expected, attacks));
      } catch (error) {
        return failed((error as Error).message);
      }
    },
  };
}
