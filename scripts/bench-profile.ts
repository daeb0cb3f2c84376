// `--profile`: a second gateway started with node --cpu-prof, driven with one workload's h2load load
// (W1 unless --only names others), stopped gracefully so node writes the profile (it does so on a
// normal exit only).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runH2load } from "./bench-h2load.js";
import type { BenchOptions } from "./bench-options.js";
import { logTail, type PlatformOptions, type PlatformPorts, startGatewayProcess } from "./bench-platform.js";
import type { Workload } from "./bench-workloads.js";

export interface ProfileOptions {
  platform: PlatformOptions;
  ports: PlatformPorts;
  resultsDir: string;
  stamp: string;
  /** The workload to drive the profiled gateway with: one whose load is `h2load-duration` (W1–W4, W7). */
  workload: Workload;
  accessToken: string;
  options: BenchOptions;
}

/** The path of the written profile (undefined, with the reason on stderr, when none was written) and the failed calls. */
export async function profileGateway(profile: ProfileOptions): Promise<{ file?: string; failed: number }> {
  const { platform, ports, resultsDir, stamp, workload, accessToken, options } = profile;
  const { load } = workload;
  if (load.kind !== "h2load-duration") throw new Error(`--profile drives h2load workloads only (W1–W4, W7), not ${workload.id}`);
  const name = `gateway-${workload.id}-${stamp}.cpuprofile`;
  console.log(`\nprofiling a second gateway under ${workload.id} (node --cpu-prof)`);
  const { gateway, ports: profilePorts } = await startGatewayProcess(platform, ports, "gateway-profile", [
    "--cpu-prof",
    `--cpu-prof-dir=${resultsDir}`,
    `--cpu-prof-name=${name}`,
  ]);
  let failed = 0;
  try {
    const bodyFile = join(platform.logDir, `${workload.id}-profile.body`);
    writeFileSync(bodyFile, workload.body);
    const result = await runH2load({
      url: `http://127.0.0.1:${profilePorts.gateway}${workload.path}`,
      headers: { ...workload.headers, authorization: `Bearer ${accessToken}` },
      bodyFile,
      clients: load.clients,
      streams: load.streams,
      durationSeconds: options.warmupSeconds + options.durationSeconds,
      logFile: join(platform.logDir, `${workload.id}-profile.log`),
    });
    failed = result.requests.failed + result.requests.timeout;
    console.log(`  ${result.rps.toFixed(0)} calls/s under the profiler, ${failed} failed`);
  } finally {
    await gateway.stop(30_000);
  }
  const file = join(resultsDir, name);
  if (!existsSync(file)) {
    console.error(`the profiled gateway wrote no profile (${file}):\n${logTail(gateway.logFile)}`);
    return { failed: failed + 1 };
  }
  return { file, failed };
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

/**
 * The functions with the most self time in a .cpuprofile, in percent of the busy (non-idle) samples;
 * with `lastSeconds`, of the samples in the profile's last seconds only (the last measured run).
 */
export function summarizeProfile(file: string, top = 15, lastSeconds?: number): string[] {
  const profile = JSON.parse(readFileSync(file, "utf8")) as {
    nodes: ProfileNode[];
    samples?: number[];
    timeDeltas?: number[];
    endTime?: number;
    startTime?: number;
  };
  const hits = new Map<number, number>();
  if (lastSeconds !== undefined && profile.samples && profile.timeDeltas && profile.startTime !== undefined) {
    const from = (profile.endTime ?? 0) - lastSeconds * 1e6;
    let at = profile.startTime;
    profile.samples.forEach((id, i) => {
      at += profile.timeDeltas?.[i] ?? 0;
      if (at >= from) hits.set(id, (hits.get(id) ?? 0) + 1);
    });
  } else {
    for (const node of profile.nodes) hits.set(node.id, node.hitCount ?? 0);
  }
  const self = new Map<string, number>();
  let total = 0;
  for (const node of profile.nodes) {
    const count = hits.get(node.id) ?? 0;
    if (node.callFrame.functionName === "(idle)") continue;
    total += count;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url
      ? `${url
          .replace(/^file:\/\//, "")
          .replace(/^.*\/node_modules\//, "")
          .replace(/^.*\/services\//, "services/")}:${lineNumber + 1}`
      : "";
    const key = `${functionName || "(anonymous)"} ${where}`.trim();
    self.set(key, (self.get(key) ?? 0) + count);
  }
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([key, count]) => `${((100 * count) / Math.max(1, total)).toFixed(1).padStart(5)}%  ${key}`);
}
