// npm run soak [-- --duration=<seconds>] [--rate=<calls per second>]: replicas under faults.
// Two gateways on one Redis, two auth, two greeter and two lang processes on one PostgreSQL (the
// soak's own servers, from this machine's binaries), mixed traffic through both gateways, and
// meanwhile every kind of replica killed (SIGKILL) and started again in turn, PostgreSQL and Redis
// restarted once each. It ends with one line:
//   calls N, failed F (non-idempotent retried R), acknowledged writes W, lost L
// and exits 1 when a write was lost, a process crashed, a non-idempotent call was carried out twice, an idempotent
// call failed while a replica that could serve it was up, a rate limit let too much through across
// the two gateways, or a logout on one gateway was not honoured by the other within 1 s.
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { logTail } from "./bench-platform.js";
import { checkLogout, checkRateLimit, checkWrites, type LogoutCheck, type RateLimitCheck } from "./soak-checks.js";
import { type SoakKind, soakKinds, startSoakPlatform } from "./soak-platform.js";
import { startSoakPostgres, startSoakRedis } from "./soak-servers.js";
import { gatewayClients, runTraffic, type SoakUser, signUp } from "./soak-traffic.js";

const root = fileURLToPath(new URL("..", import.meta.url));

function readFlag(name: string, fallback: number, min: number, max: number): number {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  if (!arg) return fallback;
  const value = Number(arg.slice(name.length + 3));
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new Error(`--${name}=${arg.slice(name.length + 3)} is not valid: expected a number from ${min} to ${max}`);
  }
  return value;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function main(): Promise<number> {
  const durationS = readFlag("duration", 300, 10, 86_400);
  const rate = readFlag("rate", 40, 1, 2000);
  const keepLogs = process.argv.includes("--keep");
  const dir = mkdtempSync(join(tmpdir(), "portico-soak-"));
  chmodSync(dir, 0o755); // PostgreSQL runs as its own user below it
  const logDir = join(dir, "logs");
  mkdirSync(logDir);
  console.log(`soak: ${durationS} s at ${rate} calls/s; logs in ${logDir}`);
  const postgres = await startSoakPostgres(join(dir, "postgres"));
  const redis = await startSoakRedis();
  let platform: Awaited<ReturnType<typeof startSoakPlatform>> | undefined;
  let exitCode = 2; // the logs stay when it fails
  try {
    platform = await startSoakPlatform({
      root,
      dataDir: join(dir, "data"),
      logDir,
      databaseUrl: postgres.url,
      redisUrl: redis.url,
    });
    const up = platform;
    const clients = up.gatewayUrls.map(gatewayClients);
    console.log(`soak: ${up.replicas.length} processes ready (${up.replicas.map((r) => `${r.name}:${r.port}`).join(" ")})`);

    const checks: { rate: RateLimitCheck[]; logout: LogoutCheck[] } = { rate: [], logout: [] };
    const runChecks = async (when: string) => {
      const rateCheck = await checkRateLimit(clients);
      const logout = await checkLogout(clients);
      checks.rate.push(rateCheck);
      checks.logout.push(logout);
      console.log(
        `soak: ${when}: SetLanguage (60/min per user) across both gateways: ${rateCheck.ok} of 90 let through ` +
          `(at most ${rateCheck.allowed}), ${rateCheck.limited} limited; logout on one gateway refused by the other ` +
          `after ${logout.refusedAfterMs === undefined ? "more than 5000" : logout.refusedAfterMs} ms`,
      );
    };
    await runChecks("before the faults");

    const users: SoakUser[] = [];
    for (let i = 0; i < 10; i++) users.push(await signUp(clients[i % clients.length]!));

    // The faults, spread over the middle 80 % of the run: one replica of each kind, the database,
    // the other replica of each kind, Redis.
    const events: (SoakKind | "postgres" | "redis")[] = [
      ...soakKinds.map((k) => k),
      "postgres",
      ...soakKinds.map((k) => k),
      "redis",
    ];
    const databaseDown: [number, number][] = [];
    const begin = Date.now();
    const durationMs = durationS * 1000;
    const spacing = (durationMs * 0.8) / events.length;
    const faults = (async () => {
      const killedOnce = new Set<SoakKind>();
      for (const [i, event] of events.entries()) {
        const wait = begin + durationMs * 0.1 + i * spacing - Date.now();
        if (wait > 0) await sleep(wait);
        const at = Date.now();
        if (event === "postgres") {
          const window: [number, number] = [at, Number.POSITIVE_INFINITY];
          databaseDown.push(window);
          await postgres.restart(3000);
          // The services' pools find their connections cut on first use after the restart.
          window[1] = Date.now() + 2000;
          console.log(
            `soak: ${seconds(at - begin)}: PostgreSQL stopped (fast), down 3 s, back after ${seconds(Date.now() - at)}`,
          );
        } else if (event === "redis") {
          await redis.restart(2000);
          console.log(`soak: ${seconds(at - begin)}: Redis stopped, down 2 s, back after ${seconds(Date.now() - at)}`);
        } else {
          const replica = up.of(event)[killedOnce.has(event) ? 1 : 0]!;
          killedOnce.add(event);
          await replica.kill();
          await sleep(1000);
          await replica.start();
          console.log(
            `soak: ${seconds(at - begin)}: ${replica.name} killed (SIGKILL), ready again after ${seconds(Date.now() - at)}`,
          );
        }
      }
    })();
    // A process that ends on its own is a defect to report; it is started again, as a supervisor or
    // the kubelet would, so the run goes on.
    const crashes: string[] = [];
    const watchdog = setInterval(() => {
      for (const replica of up.replicas) {
        if (!replica.crashed()) continue;
        const why = logTail(replica.logFile, 200)
          .split("\n")
          .map((line) => line.trim())
          .find((line) => /^(\w*Error\b|error:)/.test(line));
        crashes.push(`${replica.name} exited by itself at ${seconds(Date.now() - begin)}${why ? `: ${why}` : ""}`);
        replica.start().catch(() => undefined);
      }
    }, 500);
    const tally = await runTraffic({
      clients,
      users,
      durationMs,
      rate,
      excused: (start, end) => databaseDown.some(([from, to]) => start <= to && end >= from),
    });
    await faults;
    clearInterval(watchdog);
    for (const replica of up.replicas) if (!replica.up()) await replica.start();
    // The gateways reconnect to Redis within 2 s of its return (until then limits fail open, as configured).
    await sleep(5000);

    await runChecks("after the faults");
    const writes = await checkWrites(clients, users, tally.signedUp);

    for (const [op, { calls, failed }] of Object.entries(tally.byOp))
      console.log(`soak: ${op}: ${calls} calls, ${failed} failed`);
    const reasons = [...tally.reasons].sort((x, y) => y[1] - x[1]).slice(0, 12);
    for (const [reason, count] of reasons) console.log(`soak: failed ${count}× ${reason}`);
    const fallbacks = [...tally.languageFallbacks].sort((x, y) => y[1] - x[1]);
    for (const [reason, count] of fallbacks) console.log(`soak: ${count} greetings in English: ${reason}`);
    console.log(
      `soak: idempotent calls moved to the other gateway ${tally.movedToOtherGateway}; idempotent failures while the database ` +
        `was down ${tally.idempotentFailedExcused}, while a replica could serve them ${tally.idempotentFailedUnexcused}`,
    );
    for (const example of writes.examples) console.log(`soak: lost ${example}`);
    for (const crash of crashes) console.log(`soak: ${crash}`);
    const problems = [
      writes.lost > 0 && `${writes.lost} acknowledged writes lost`,
      crashes.length > 0 && `${crashes.length} processes exited by themselves`,
      writes.duplicated > 0 && `${writes.duplicated} greetings stored twice`,
      tally.idempotentFailedUnexcused > 0 &&
        `${tally.idempotentFailedUnexcused} idempotent calls failed while a healthy replica existed`,
      checks.rate.some((c) => !c.pass) && "the rate limit did not hold across the two gateways",
      checks.logout.some((c) => !c.pass) && "a logout was not honoured by the other gateway within 1 s",
    ].filter(Boolean);
    for (const problem of problems) console.log(`soak: FAILED: ${problem}`);
    console.log(
      `calls ${tally.calls}, failed ${tally.failed} (non-idempotent retried ${writes.duplicated}), ` +
        `acknowledged writes ${writes.acknowledged}, lost ${writes.lost}`,
    );
    exitCode = problems.length === 0 ? 0 : 1;
    return exitCode;
  } finally {
    await platform?.stop();
    await redis.stop();
    await postgres.stop();
    if (!keepLogs && exitCode === 0) rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`soak: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(2);
  },
);
