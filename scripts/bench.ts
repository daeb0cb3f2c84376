// npm run bench: builds the platform, starts it from the build beside its peers (the greeter
// called directly, nginx grpc_pass, nginx auth_request), drives W1–W7 of issue 6 and W8 (W2's
// clients beside a hostile connection, issue 11) with h2load and reports throughput, latency, CPU
// per call and memory, with the targets met or not.
// Exit codes: 0 ok, 1 errors in a workload (or the harness could not run), 2 a target not met (full run only).
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { h2loadVersion } from "./bench-h2load.js";
import { benchUsage, parseBenchOptions } from "./bench-options.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

function main(): Promise<number> | number {
  let options: ReturnType<typeof parseBenchOptions>;
  try {
    options = parseBenchOptions(process.argv.slice(2));
  } catch (error) {
    console.error(`bench: ${(error as Error).message}`);
    return 1;
  }
  if (!options) {
    console.log(benchUsage);
    return 0;
  }
  if (process.platform !== "linux") {
    console.error("bench: CPU and memory are read from /proc, so the benchmark runs on Linux only.");
    return 1;
  }
  const h2load = h2loadVersion();
  if (!h2load) {
    console.error(
      "bench: h2load is not installed. It comes with nghttp2: apt-get install nghttp2-client (Debian, Ubuntu), " +
        "dnf install nghttp2 (Fedora), brew install nghttp2 (macOS).",
    );
    return 1;
  }
  console.log(`${h2load}; ${options.smoke ? "smoke run (targets not enforced)" : "full run"}`);
  if (!options.skipBuild) {
    const build = spawnSync("npm", ["run", "build", "--silent"], { cwd: root, stdio: "inherit" });
    if (build.status !== 0) {
      console.error("bench: npm run build failed");
      return 1;
    }
  }
  // Imported only now: it loads the build (@portico/kit, @portico/gen).
  if (options.tracing) return (async () => (await import("./bench-tracing.js")).runTracingBench(root, options))();
  const run = async () => (await import("./bench-run.js")).runBench(root, options);
  return run();
}

process.exitCode = await main();
