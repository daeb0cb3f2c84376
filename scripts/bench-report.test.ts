// The bench's verdicts as a reader sees them: a value written next to "not met" must not read as if
// it met its target (a 0.998× throughput printed as 1.00×, a 100.4 MB peak as 100 MB).
import { describe, expect, it } from "vitest";
import { evaluateTargets, type RunResult } from "./bench-report.js";

const run = (
  workload: RunResult["workload"],
  target: RunResult["target"],
  rps: number,
  proxyMicros: number,
  peakMb?: number,
): RunResult => ({
  workload,
  target,
  calls: rps * 10,
  seconds: 10,
  rps,
  messagesPerSecond: rps,
  latencyMs: { p50: 1, p90: 1, p99: 1, max: 1 },
  cpuMicrosPerCall: { proxy: proxyMicros },
  peakRssMb: { proxy: peakMb },
  errors: 0,
  problems: [],
});

const verdict = (runs: RunResult[], id: string, text: string) =>
  evaluateTargets(runs, []).find((c) => c.id === id && c.text.startsWith(text));

describe("bench targets", () => {
  it("writes a value that rounds across its target with the decimals that show which side it is on", () => {
    const runs = [
      run("W3", "nginx", 1000, 100),
      run("W3", "gateway", 998, 150.4),
      run("W4", "nginx", 1000, 100),
      run("W4", "gateway", 1004, 149.6),
      run("W5", "gateway", 500, 200, 100.4),
    ];
    expect(verdict(runs, "W3", "gateway throughput ≥ 1.0×")).toMatchObject({ value: "0.998×", status: "not met" });
    expect(verdict(runs, "W3", "gateway CPU per call")).toMatchObject({ value: "1.504×", status: "not met" });
    // Rounding that stays on the right side keeps two decimals.
    expect(verdict(runs, "W4", "gateway throughput ≥ 1.0×")).toMatchObject({ value: "1.00×", status: "met" });
    expect(verdict(runs, "W4", "gateway CPU per call")).toMatchObject({ value: "1.50×", status: "met" });
    expect(verdict(runs, "W5", "gateway peak memory ≤ 100 MB")).toMatchObject({ value: "100.4 MB", status: "not met" });
    expect(verdict(runs, "W5", "gateway peak memory ≤ 300 MB")).toMatchObject({ value: "100 MB", status: "met" });
  });
});
