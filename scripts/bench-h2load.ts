// Runs h2load and reads what it measured: its summary and its per-request log.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";

export interface H2loadOptions {
  /** Full URL including the RPC path. */
  url: string;
  headers: Record<string, string>;
  /** Request body file (h2load then POSTs it). */
  bodyFile: string;
  /** Concurrent connections (`-c`). */
  clients: number;
  /** Concurrent streams per connection (`-m`, default 1). */
  streams?: number;
  /** Timing-based run (`-D`); otherwise `requests` is used. */
  durationSeconds?: number;
  /** Total requests (`-n`). */
  requests?: number;
  /** Requests per second of every connection (`--rps`). */
  rpsPerClient?: number;
  /** Connections opened `count` at a time every `periodMs` (`-r`, `--rate-period`), so timers do not align. */
  connectRate?: { count: number; periodMs: number };
  /** Where h2load writes one line per request: start, status, duration. */
  logFile: string;
}

export interface Latency {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface H2loadResult {
  command: string;
  seconds: number;
  rps: number;
  requests: { total: number; started: number; done: number; succeeded: number; failed: number; errored: number; timeout: number };
  status: { "2xx": number; "3xx": number; "4xx": number; "5xx": number };
  /** Response body bytes received (DATA frames). */
  dataBytes: number;
  /** From the per-request log, milliseconds. */
  latencyMs: Latency;
  /** Requests in the log whose HTTP status was not 200 (-1 = stream failed). */
  logNon200: number;
  logRows: number;
  output: string;
}

export function h2loadVersion(): string | undefined {
  try {
    return execFileSync("h2load", ["--version"], { encoding: "utf8" }).trim();
  } catch {
    return undefined;
  }
}

export function h2loadArgs(options: H2loadOptions): string[] {
  const args = ["-t", "1", "-c", String(options.clients), "-m", String(options.streams ?? 1)];
  if (options.durationSeconds !== undefined) args.push("-D", `${Math.round(options.durationSeconds * 1000)}ms`);
  if (options.requests !== undefined) args.push("-n", String(options.requests));
  if (options.rpsPerClient !== undefined) args.push("--rps", String(options.rpsPerClient));
  if (options.connectRate)
    args.push("-r", String(options.connectRate.count), "--rate-period", `${options.connectRate.periodMs}ms`);
  for (const [name, value] of Object.entries(options.headers)) args.push("-H", `${name}: ${value}`);
  args.push("-d", options.bodyFile, `--log-file=${options.logFile}`, options.url);
  return args;
}

export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export function latencyOf(micros: Float64Array): Latency {
  micros.sort();
  return {
    p50: percentile(micros, 50) / 1000,
    p90: percentile(micros, 90) / 1000,
    p99: percentile(micros, 99) / 1000,
    max: percentile(micros, 100) / 1000,
  };
}

/** The command line with credentials elided, for the report. */
function describeCommand(args: string[]): string {
  const shown = args.map((arg) => arg.replace(/^(authorization: Bearer |x-portico-identity: ).*/i, "$1…"));
  return `h2load ${shown.map((a) => (/[\s"]/.test(a) ? JSON.stringify(a) : a)).join(" ")}`;
}

function num(output: string, pattern: RegExp): number {
  const match = pattern.exec(output);
  return match ? Number(match[1]) : Number.NaN;
}

export function parseH2loadOutput(
  output: string,
): Omit<H2loadResult, "command" | "latencyMs" | "logNon200" | "logRows" | "output"> {
  const finished = /finished in ([\d.]+)(ms|s), ([\d.]+) req\/s/.exec(output);
  return {
    seconds: finished ? Number(finished[1]) / (finished[2] === "ms" ? 1000 : 1) : Number.NaN,
    rps: finished ? Number(finished[3]) : Number.NaN,
    requests: {
      total: num(output, /requests: (\d+) total/),
      started: num(output, /(\d+) started/),
      done: num(output, /(\d+) done/),
      succeeded: num(output, /(\d+) succeeded/),
      failed: num(output, /(\d+) failed/),
      errored: num(output, /(\d+) errored/),
      timeout: num(output, /(\d+) timeout/),
    },
    status: {
      "2xx": num(output, /status codes: (\d+) 2xx/),
      "3xx": num(output, /(\d+) 3xx/),
      "4xx": num(output, /(\d+) 4xx/),
      "5xx": num(output, /(\d+) 5xx/),
    },
    dataBytes: num(output, /\((\d+)\) data/),
  };
}

const running = new Set<ChildProcess>();

/** Stops every h2load still running (the harness was interrupted). */
export function stopRunningH2load(): void {
  for (const child of running) child.kill("SIGTERM");
}

/** Runs h2load to completion; rejects when it cannot run at all. */
export async function runH2load(options: H2loadOptions): Promise<H2loadResult> {
  const args = h2loadArgs(options);
  rmSync(options.logFile, { force: true }); // h2load appends to an existing log
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn("h2load", args, { stdio: ["ignore", "pipe", "pipe"] });
    running.add(child);
    let text = "";
    child.stdout.on("data", (chunk: Buffer) => {
      text += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      text += chunk.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => {
      running.delete(child);
      if (code !== 0 && !text.includes("finished in")) reject(new Error(`h2load exited ${code}: ${text.trim().slice(-500)}`));
      else resolve(text);
    });
  });
  const rows = readFileSync(options.logFile, "utf8").split("\n").filter(Boolean);
  const micros = new Float64Array(rows.length);
  let logNon200 = 0;
  rows.forEach((row, i) => {
    const [, status, duration] = row.split("\t");
    if (status !== "200") logNon200++;
    micros[i] = Number(duration);
  });
  const summary = parseH2loadOutput(output);
  return {
    command: describeCommand(args),
    ...summary,
    latencyMs: latencyOf(micros),
    logNon200,
    logRows: rows.length,
    output,
  };
}
