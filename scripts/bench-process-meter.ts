// CPU and memory of a process tree from /proc, for the benchmark's per-call costs.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";

const clockTicksPerSecond = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of one process (all its threads) in microseconds; undefined once it is gone. */
export function cpuMicros(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name may hold spaces and parentheses: fields are counted after the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1_000_000) / clockTicksPerSecond;
}

function statusField(pid: number, field: "VmRSS" | "VmHWM"): number | undefined {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** The process and all its descendants (nginx workers, cluster workers). */
export function processTree(pid: number): number[] {
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${pids[i]}/task`);
    } catch {
      continue;
    }
    for (const task of tasks) {
      try {
        const children = readFileSync(`/proc/${pids[i]}/task/${task}/children`, "utf8").trim();
        if (children) pids.push(...children.split(" ").map(Number));
      } catch {
        // the task ended meanwhile
      }
    }
  }
  return pids;
}

/** Resets VmHWM to the current RSS (`clear_refs` 5); false where the kernel does not allow it. */
function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

export interface MeterReading {
  /** CPU time of the whole tree during the measurement, microseconds. */
  cpuMicros: number;
  /** Peak resident memory during the measurement, bytes (VmHWM after a reset, else sampled VmRSS). */
  peakRssBytes: number;
  /** Whether the peak comes from the kernel's high-water mark (true) or from 100 ms samples. */
  peakFromHwm: boolean;
}

/** Resident memory of these processes now (VmRSS), bytes; `processTree(pid)` for a process and its children. */
export function residentBytes(pids: number[]): number {
  return pids.reduce((total, pid) => total + (statusField(pid, "VmRSS") ?? 0), 0);
}

export interface ProcessMeter {
  stop(): MeterReading;
}

/** Starts measuring a process tree: CPU deltas from /proc/<pid>/stat, peak memory from VmHWM. */
export function startProcessMeter(rootPid: number): ProcessMeter {
  const pids = processTree(rootPid);
  const startCpu = new Map(pids.map((pid) => [pid, cpuMicros(pid) ?? 0]));
  const hwm = pids.every((pid) => resetPeak(pid));
  let sampledPeak = 0;
  const sample = () => {
    sampledPeak = Math.max(sampledPeak, residentBytes(pids));
  };
  sample();
  const timer = setInterval(sample, 100);
  return {
    stop() {
      clearInterval(timer);
      sample();
      let cpu = 0;
      let peak = 0;
      for (const pid of pids) {
        cpu += (cpuMicros(pid) ?? startCpu.get(pid)!) - startCpu.get(pid)!;
        peak += statusField(pid, "VmHWM") ?? 0;
      }
      return { cpuMicros: cpu, peakRssBytes: hwm ? Math.max(peak, sampledPeak) : sampledPeak, peakFromHwm: hwm };
    },
  };
}
