// W6's load generator: h2load sends the same headers on every call, so a run where every call
// carries a token never seen before needs its own client. Plain node:http2, pre-built headers.
import { type Latency, latencyOf } from "./bench-h2load.js";
import { type CallSpec, callOnce, connect } from "./bench-probe.js";

export interface TokenLoadOptions {
  /** The call, without its authorization header. */
  spec: CallSpec;
  expectedBody: Buffer;
  /** One call per token, each token once. */
  tokens: string[];
  connections: number;
  /** Calls in flight at once, spread over the connections. */
  concurrency: number;
}

export interface TokenLoadResult {
  calls: number;
  failed: number;
  /** The first distinct problems seen. */
  problems: string[];
  seconds: number;
  rps: number;
  latencyMs: Latency;
}

export async function runTokenLoad(options: TokenLoadOptions): Promise<TokenLoadResult> {
  const sessions = await Promise.all(Array.from({ length: options.connections }, () => connect(options.spec.origin)));
  const micros = new Float64Array(options.tokens.length);
  const problems = new Set<string>();
  let next = 0;
  let failed = 0;
  const started = performance.now();
  const worker = async (index: number) => {
    const session = sessions[index % sessions.length];
    for (let i = next++; i < options.tokens.length; i = next++) {
      const spec = { ...options.spec, headers: { ...options.spec.headers, authorization: `Bearer ${options.tokens[i]}` } };
      const outcome = await callOnce(session, spec, options.expectedBody);
      micros[i] = outcome.totalMs * 1000;
      if (!outcome.ok) {
        failed++;
        if (problems.size < 5) problems.add(outcome.problem ?? "failed");
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: options.concurrency }, (_, i) => worker(i)));
  } finally {
    for (const session of sessions) session.close();
  }
  const seconds = (performance.now() - started) / 1000;
  return {
    calls: options.tokens.length,
    failed,
    problems: [...problems],
    seconds,
    rps: options.tokens.length / seconds,
    latencyMs: latencyOf(micros),
  };
}
