// npm run footprint: the platform's memory at idle, process by process. Starts `node dist/start.js`
// (npm start without the build) on the fixed ports, waits for "Portico is ready" and then --settle
// seconds, reads every process of its tree from /proc (RSS, and PSS, which counts pages shared
// between processes, such as the node binary and PostgreSQL's shared memory, once in all), asks each
// node process for its V8 heap (scripts/footprint-probe.mjs), prints the table and stops the platform.
// With --pid=N it reads an already running tree instead (e.g. `npm start`'s own npm process).
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { processTree } from "./bench-process-meter.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const usage = `npm run footprint -- [--settle=30] [--pid=N]

  --settle=30  seconds to wait after "Portico is ready" before reading (default 30)
  --pid=N      read the running process tree of pid N (e.g. npm start's npm) instead of starting one;
               no V8 heap figures then`;

interface Options {
  settleSeconds: number;
  pid: number | undefined;
}

function parseOptions(argv: string[]): Options | undefined {
  const options: Options = { settleSeconds: 30, pid: undefined };
  for (const arg of argv) {
    const [flag, value = ""] = arg.split("=", 2) as [string, string?];
    const n = Number(value);
    if (flag === "--help") return undefined;
    if (flag === "--settle" && Number.isFinite(n) && n >= 0 && n <= 600) options.settleSeconds = n;
    else if (flag === "--pid" && Number.isInteger(n) && n > 0) options.pid = n;
    else throw new Error(`${arg}: not an option (--settle=0…600 seconds, --pid=<process id>)`);
  }
  return options;
}

/** One process: what /proc says, and what V8 says for a node process that answered the probe. */
interface Reading {
  pid: number;
  name: string;
  rss: number;
  pss: number;
  pssAnon: number;
  pssFile: number;
  pssShmem: number;
  v8?: { heapTotal: number; heapUsed: number; external: number; arrayBuffers: number; code: number; newSpace: number };
}

const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

function rollup(pid: number): Record<string, number> | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
    return Object.fromEntries([...text.matchAll(/^(\w+):\s+(\d+) kB/gm)].map((m) => [m[1], Number(m[2]) * 1024]));
  } catch {
    return undefined;
  }
}

/** A readable name: the service a node process runs, postgres' process title, or the command. */
function processName(pid: number): string {
  const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  const line = args.join(" ");
  const program = ((args[0] ?? "?").split(" ")[0] as string).split("/").at(-1) as string;
  // npm retitles itself "npm start"; its script runs under sh.
  if (program === "npm" || (program === "node" && args.some((a) => /npm-cli\.js$/.test(a)))) return "npm";
  if (program === "sh" || program === "bash") return "sh";
  const service = /services\/([a-z0-9-]+)\/(?:dist|src)\/main\.[jt]s/.exec(line);
  if (service) return service[1] as string;
  if (/dist\/start\.js|scripts\/start\.ts/.test(line)) return "supervisor";
  if (/postgres/.test(line)) return "postgres";
  return line.slice(0, 40);
}

function isNode(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0]?.split("/").at(-1) === "node";
  } catch {
    return false;
  }
}

async function read(rootPid: number, probeDir: string | undefined): Promise<Reading[]> {
  const pids = processTree(rootPid);
  const readings: Reading[] = [];
  for (const pid of pids) {
    const r = rollup(pid);
    if (!r) continue;
    readings.push({
      pid,
      name: processName(pid),
      rss: r.Rss ?? 0,
      pss: r.Pss ?? 0,
      pssAnon: r.Pss_Anon ?? 0,
      pssFile: r.Pss_File ?? 0,
      pssShmem: r.Pss_Shmem ?? 0,
    });
  }
  if (probeDir) {
    const nodes = readings.filter((r) => isNode(r.pid) && r.name !== "npm");
    for (const r of nodes) process.kill(r.pid, "SIGUSR2");
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    for (const r of nodes) {
      try {
        r.v8 = JSON.parse(readFileSync(join(probeDir, `${r.pid}.json`), "utf8"));
      } catch {
        // no answer (not our probe): /proc's figures only
      }
    }
  }
  return readings;
}

function print(readings: Reading[]): void {
  // PostgreSQL's processes (postmaster, its helpers, one backend per pooled connection) as one row.
  const groups = new Map<string, Reading[]>();
  for (const r of readings) groups.set(r.name, [...(groups.get(r.name) ?? []), r]);
  const sum = (rs: Reading[], f: (r: Reading) => number) => rs.reduce((t, r) => t + f(r), 0);
  console.log(
    "| process | RSS MB | PSS MB | PSS anon / file / shmem MB | V8 heap used / total MB | V8 new space MB | V8 code MB | external (array buffers) MB |",
  );
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
  for (const [name, rs] of groups) {
    const v8 = rs.length === 1 ? rs[0]?.v8 : undefined;
    console.log(
      `| ${name}${rs.length > 1 ? ` (${rs.length} processes)` : ""} | ${mb(sum(rs, (r) => r.rss))} | ${mb(sum(rs, (r) => r.pss))} | ` +
        `${mb(sum(rs, (r) => r.pssAnon))} / ${mb(sum(rs, (r) => r.pssFile))} / ${mb(sum(rs, (r) => r.pssShmem))} | ` +
        (v8
          ? `${mb(v8.heapUsed)} / ${mb(v8.heapTotal)} | ${mb(v8.newSpace)} | ${mb(v8.code)} | ${mb(v8.external)} (${mb(v8.arrayBuffers)}) |`
          : "– | – | – | – |"),
    );
  }
  const withoutNpm = readings.filter((r) => r.name !== "npm" && r.name !== "sh");
  console.log(
    `| **all** (${readings.length} processes) | **${mb(sum(readings, (r) => r.rss))}** | **${mb(sum(readings, (r) => r.pss))}** | | | | |`,
  );
  if (withoutNpm.length !== readings.length) {
    console.log(
      `| all but npm and its sh | ${mb(sum(withoutNpm, (r) => r.rss))} | ${mb(sum(withoutNpm, (r) => r.pss))} | | | | |`,
    );
  }
}

async function startAndRead(settleSeconds: number): Promise<void> {
  const probeDir = mkdtempSync(join(tmpdir(), "portico-footprint-"));
  const nodeOptions = [process.env.NODE_OPTIONS, `--import=${join(root, "scripts/footprint-probe.mjs")}`].filter(Boolean);
  const child = spawn(process.execPath, ["dist/start.js"], {
    cwd: root,
    env: { ...process.env, NODE_OPTIONS: nodeOptions.join(" "), PORTICO_FOOTPRINT_DIR: probeDir },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const ready = new Promise<boolean>((resolve) => {
    const onData = (chunk: Buffer) => {
      log = (log + chunk).slice(-8_000);
      if (log.includes("Portico is ready")) resolve(true);
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    void exited.then(() => resolve(false));
  });
  try {
    if (!(await ready)) throw new Error(`the platform stopped before it was ready:\n${log}`);
    console.log(
      `ready; reading in ${settleSeconds} s (load average ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")})`,
    );
    await new Promise((resolve) => setTimeout(resolve, settleSeconds * 1_000));
    print(await read(child.pid as number, probeDir));
  } finally {
    child.kill("SIGINT");
    await exited;
    rmSync(probeDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (!options) return void console.log(usage);
  if (options.pid) print(await read(options.pid, undefined));
  else await startAndRead(options.settleSeconds);
  console.log(`load average ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}`);
}

main().catch((error: Error) => {
  console.error(`footprint: ${error.message}`);
  process.exit(1);
});
