// Command-line options of `npm run bench`.
import { type HostileAttack, hostileAttacks } from "./bench-hostile-client.js";

export interface BenchOptions {
  /** A few seconds per workload, no targets enforced; errors still fail the run. */
  smoke: boolean;
  /** Also write a CPU profile of a gateway under each h2load workload of --only (W1 by default; node --cpu-prof). */
  profile: boolean;
  /** Run auth, greeter and gateway under node --cpu-prof for the whole run (--profile-services). */
  profileServices: boolean;
  /** Workloads to run (W1…W8, auth); all when undefined. */
  only: Set<string> | undefined;
  /** Measured seconds per workload and target. */
  durationSeconds: number;
  /** Unmeasured seconds before each measurement. */
  warmupSeconds: number;
  /** Rounds per workload, targets interleaved; the median round is reported. */
  /** Rounds per workload; undefined: each workload's default (3 for W1 and W2, 1 for the rest). */
  rounds: number | undefined;
  /** Skip `npm run build`. */
  skipBuild: boolean;
  /**
   * W8's phases under attack, each a set of attacks run at once (`mix` = all of them); undefined:
   * each attack on its own (full run) or one mix (smoke).
   */
  attacks: HostileAttack[][] | undefined;
  /** Instead of the targets: the gateway's CPU per call with tracing off and on at 10 % (scripts/bench-tracing.ts). */
  tracing: boolean;
}

export const benchUsage = `npm run bench -- [options]

  --smoke           a few seconds per workload, targets reported but not enforced (CI)
  --profile         also write a CPU profile of a gateway under each of --only's h2load workloads
                    (W1–W4, W7; W1 when none) to bench/results/
  --profile-services  run auth, greeter and gateway under node --cpu-prof for the whole run (e.g.
                    --only=W6: the token-miss path through all three); each writes its profile to
                    bench/results/ when the run ends; the run's CPU figures include the profiler's cost
  --only=W1,W8,auth run only these workloads (W1…W8, auth = Authenticate and Login)
  --duration=10     measured seconds per workload and target (default 10, smoke 1.5)
  --warmup=2        unmeasured seconds before each measurement (default 2, smoke 0.5)
  --rounds=N        rounds per workload with the targets interleaved; the median round is reported
                    (default 3, as issue 16's targets are medians of three rounds; 1 for --smoke;
                    W8 runs every phase once per round, W6 mints new tokens for each round)
  --attacks=LIST    W8's attacks, each measured on its own: rapid-reset, ping-flood, settings-flood,
                    continuation-flood, zero-window, or mix (all five at once); default every one on
                    its own (smoke: mix)
  --tracing         instead: the gateway's CPU per call with tracing off and on (10 % sampling, OTLP/HTTP
                    to a loopback sink), W1 and W2 unless --only says otherwise
  --no-build        use the existing build instead of running npm run build
  --help            this text

Needs h2load (Debian: apt-get install nghttp2-client); nginx (apt-get install nginx) for the peers.
DATABASE_URL selects a PostgreSQL server; otherwise npm start's embedded PostgreSQL, in a temporary directory.`;

const workloadNames = ["W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8", "AUTH"];

function seconds(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > 600) throw new Error(`${flag}=${value}: give seconds between 0 and 600`);
  return n;
}

/** Parses argv; throws with a message naming the bad argument. Undefined means --help. */
export function parseBenchOptions(argv: string[]): BenchOptions | undefined {
  let smoke = false;
  let profile = false;
  let profileServices = false;
  let skipBuild = false;
  let tracing = false;
  let only: Set<string> | undefined;
  let duration: number | undefined;
  let warmup: number | undefined;
  let rounds: number | undefined;
  let attacks: HostileAttack[][] | undefined;
  for (const arg of argv) {
    const [flag, value = ""] = arg.split("=", 2);
    if (flag === "--help" || flag === "-h") return undefined;
    else if (flag === "--smoke") smoke = true;
    else if (flag === "--profile") profile = true;
    else if (flag === "--profile-services") profileServices = true;
    else if (flag === "--no-build") skipBuild = true;
    else if (flag === "--tracing") tracing = true;
    else if (flag === "--duration") duration = seconds(flag, value);
    else if (flag === "--warmup") warmup = seconds(flag, value);
    else if (flag === "--rounds") {
      rounds = Number(value);
      if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20)
        throw new Error(`--rounds=${value}: give a whole number from 1 to 20`);
    } else if (flag === "--attacks") {
      attacks = value.split(",").map((name) => {
        const attack = name.trim().toLowerCase();
        if (attack === "mix") return [...hostileAttacks];
        if (!hostileAttacks.includes(attack as HostileAttack)) {
          throw new Error(`--attacks=${value}: unknown attack ${name}; choose from ${hostileAttacks.join(", ")}, mix`);
        }
        return [attack as HostileAttack];
      });
    } else if (flag === "--only") {
      only = new Set(value.split(",").map((name) => name.trim().toUpperCase()));
      const unknown = [...only].filter((name) => !workloadNames.includes(name));
      if (unknown.length > 0 || only.size === 0) {
        throw new Error(`--only=${value}: unknown workload ${unknown.join(", ")}; choose from W1…W8 and auth`);
      }
    } else throw new Error(`unknown argument ${arg}\n\n${benchUsage}`);
  }
  return {
    smoke,
    profile,
    profileServices,
    only,
    skipBuild,
    rounds,
    attacks,
    tracing,
    durationSeconds: duration ?? (smoke ? 1.5 : 10),
    warmupSeconds: warmup ?? (smoke ? 0.5 : 2),
  };
}
