// The benchmark itself, loaded by scripts/bench.ts once the build is done (it imports the build).
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { loadServiceIdentity } from "@portico/kit";
import { decodeJwt } from "jose";
import { type BenchUser, connectJson, mintAccessTokens, NotReadyError, signUp } from "./bench-accounts.js";
import { benchAuthService } from "./bench-auth.js";
import { h2loadVersion, stopRunningH2load } from "./bench-h2load.js";
import type { HostileAttack } from "./bench-hostile-client.js";
import { createMeasurer, type Target } from "./bench-measure.js";
import { type NginxPeers, nginxVersion, startNginxPeers } from "./bench-nginx.js";
import type { BenchOptions } from "./bench-options.js";
import { benchDatabaseUrl, type PlatformOptions, retryOnPortClash, startPlatform, waitUntil } from "./bench-platform.js";
import { processTree, residentBytes } from "./bench-process-meter.js";
import { profileGateway, summarizeProfile } from "./bench-profile.js";
import {
  type AuthRun,
  describeHostile,
  evaluateTargets,
  type RunResult,
  renderMarkdown,
  renderReport,
  targetLabel,
} from "./bench-report.js";
import { defineWorkloads } from "./bench-workloads.js";

/** Runs the benchmark; the process exit code. */
export async function runBench(root: string, options: BenchOptions): Promise<number> {
  const startedAt = new Date();
  const loadAverageAtStart = loadavg();
  const workDir = mkdtempSync(join(tmpdir(), "portico-bench-"));
  const resultsDir = join(root, "bench/results");
  mkdirSync(resultsDir, { recursive: true });
  const stamp = startedAt.toISOString().replace(/[:.]/g, "-");
  const stops: (() => Promise<void>)[] = [];
  let stopping: Promise<void> | undefined;
  const stopAll = () =>
    (stopping ??= (async () => {
      for (const stop of stops.splice(0).reverse()) await stop().catch(() => {});
    })());
  let aborted = false;
  const interrupted = () => {
    aborted = true;
    process.stderr.write("\ninterrupted: stopping the platform\n");
    stopRunningH2load();
    void stopAll().then(() => process.exit(130));
  };
  process.once("SIGINT", interrupted);
  process.once("SIGTERM", interrupted);
  const wants = (id: string) => !options.only || options.only.has(id);
  let keepWorkDir = false;

  try {
    const database = process.env.DATABASE_URL
      ? "PostgreSQL (DATABASE_URL)"
      : "embedded PostgreSQL (npm start's, in a temporary directory)";
    console.log(`starting auth, greeter and gateway from the build (${database}); logs in ${workDir}`);
    const databaseUrl = await benchDatabaseUrl(workDir, stops);
    const platformOptions: PlatformOptions = {
      root,
      dataDir: join(workDir, "data"),
      logDir: workDir,
      databaseUrl,
      ...(options.profileServices ? { cpuProfileDir: resultsDir, cpuProfileStamp: stamp } : {}),
    };
    const platform = await startPlatform(platformOptions);
    stops.push(platform.stop);
    const gatewayUrl = `http://127.0.0.1:${platform.ports.gateway}`;
    const authOrigin = `http://127.0.0.1:${platform.ports.auth}`;
    // Retried only while the gateway is not ready: every SignUp that arrives counts against its per-IP limit.
    let signedUp: BenchUser | undefined;
    let lastProblem = "";
    await waitUntil(
      "SignUp through the gateway",
      async () => {
        try {
          signedUp = await signUp(gatewayUrl);
        } catch (error) {
          if (!(error instanceof NotReadyError)) throw error;
          lastProblem = error.message;
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
        return signedUp !== undefined;
      },
      platform.gateway,
      30_000,
    ).catch((error: Error) => {
      throw new Error(lastProblem ? `${error.message}\nlast attempt: ${lastProblem}` : error.message);
    });
    const user = signedUp!;
    console.log(`signed up ${user.email} through the gateway`);
    // The gateway at rest: started, routes loaded, one call answered (issue 16: ≤ 70 MB).
    const idleGatewayMb = residentBytes(processTree(platform.gateway.pid)) / 2 ** 20;
    console.log(`gateway resident memory at rest: ${idleGatewayMb.toFixed(0)} MB`);

    // The token for the gateway and nginx+auth_request, refreshed before it runs out.
    let accessToken = user.accessToken;
    let refreshToken = user.refreshToken;
    const freshToken = async () => {
      const exp = decodeJwt(accessToken).exp ?? Number.POSITIVE_INFINITY;
      if (exp * 1000 - Date.now() > 120_000) return;
      const next = await connectJson<{ tokens: { accessToken: string; refreshToken: string } }>(
        authOrigin,
        "/portico.auth.v1.AuthService/Refresh",
        { refreshToken },
      );
      accessToken = next.tokens.accessToken;
      refreshToken = next.tokens.refreshToken;
    };
    // Where no proxy checks tokens (direct, nginx), the harness sends the assertion the gateway would
    // (signed with the gateway's key, addressed to the greeter, fresh for each run: it lives 60 s).
    const gatewayIdentity = loadServiceIdentity("gateway", platformOptions.dataDir, {});
    const benchUser = {
      userId: user.userId,
      tier: user.tier,
      roles: user.roles,
      sessionId: String(decodeJwt(accessToken).sid ?? ""),
      clientAddress: "127.0.0.1",
    };

    const skipped: string[] = [];
    let peers: NginxPeers | undefined;
    const nginx = nginxVersion();
    if (!nginx) {
      skipped.push("nginx is not installed: the nginx peers are skipped (Debian: apt-get install nginx).");
      console.log(skipped[0]);
    } else {
      const nginxOptions = {
        root,
        workDir,
        greeterPort: platform.ports.greeter,
        authServicePort: platform.ports.auth,
        env: platform.env,
      };
      peers = await retryOnPortClash(() => startNginxPeers(nginxOptions));
      stops.push(peers.stop);
      console.log(`${nginx}: grpc_pass on :${peers.plainPort}, auth_request on :${peers.authPort}`);
    }

    const bearer = () => ({ authorization: `Bearer ${accessToken}` });
    const asserted = () => ({ "x-portico-identity": gatewayIdentity.signer.assertion(benchUser, "greeter").token });
    const direct: Target = { name: "direct", origin: `http://127.0.0.1:${platform.ports.greeter}`, credentials: asserted };
    const targets: Target[] = [direct];
    if (peers) {
      targets.push(
        { name: "nginx", origin: `http://127.0.0.1:${peers.plainPort}`, credentials: asserted, proxy: peers.nginx },
        {
          name: "nginx-auth",
          origin: `http://127.0.0.1:${peers.authPort}`,
          credentials: bearer,
          proxy: peers.nginx,
          auth: peers.verifier,
        },
      );
    }
    targets.push({ name: "gateway", origin: gatewayUrl, credentials: bearer, proxy: platform.gateway, auth: platform.auth });

    // W6's tokens are new once: each round mints its own, which every target of the round uses.
    let tokens: { round: number; list: string[] } | undefined;
    const measurer = createMeasurer({
      workDir,
      options,
      greeter: platform.greeter,
      direct,
      async freshTokens(count, round) {
        if (tokens?.round !== round) {
          const started = performance.now();
          tokens = { round, list: await mintAccessTokens(authOrigin, user, count) };
          console.log(
            `  minted ${tokens.list.length} access tokens with Refresh in ${((performance.now() - started) / 1000).toFixed(1)} s`,
          );
        }
        return tokens.list;
      },
    });

    const allWorkloads = defineWorkloads({ smoke: options.smoke, attacks: options.attacks });
    const workloads = allWorkloads.filter((w) => wants(w.id));
    const runs: RunResult[] = [];
    for (const w of workloads) {
      console.log(`\n${w.id}  ${w.title}`);
      const workloadTargets = targets.filter((t) => w.targets.includes(t.name));
      if (w.load.kind === "hostile-neighbour") {
        // W8: the clients alone and beside each attack, back to back on the same gateway; with
        // --rounds, all phases again per round (in a rotated order) and the median round of each phase reported.
        const rounds = options.rounds ?? w.rounds;
        const byPhase = new Map<string, RunResult[]>();
        for (let round = 1; round <= rounds; round++) {
          if (rounds > 1) console.log(`  round ${round} of ${rounds}`);
          // Each round starts at another phase, so that no attack is always measured last, after
          // every other attack of the round (session 8: calls/s fell along the fixed order in all rounds).
          const order: HostileAttack[][] = [[], ...w.load.phases];
          const shift = ((round - 1) * Math.ceil(order.length / rounds)) % order.length;
          const phases = [...order.slice(shift), ...order.slice(0, shift)];
          for (const target of workloadTargets) {
            for (const attacks of phases) {
              if (aborted) return 130;
              await freshToken();
              const run = await measurer.measure(w, target, { round, attacks });
              const phase = `${target.name} ${run.phase ?? ""}`;
              byPhase.set(phase, [...(byPhase.get(phase) ?? []), run]);
              console.log(
                `  ${(run.phase ?? "").padEnd(18)} ${`${run.rps.toFixed(0)} calls/s`.padStart(16)}  p50 ${run.latencyMs.p50.toFixed(2)} ms  ` +
                  `p99 ${run.latencyMs.p99.toFixed(2)} ms  gateway ${run.peakRssMb.proxy?.toFixed(0) ?? "–"} MB  errors ${run.errors}`,
              );
              if (run.hostile) console.log(`    ${describeHostile(run)}`);
              for (const problem of run.problems) console.log(`    ! ${problem}`);
            }
          }
        }
        for (const phaseRuns of byPhase.values()) runs.push(medianRun(phaseRuns));
        continue;
      }
      // Rounds interleave the targets, so a noisy minute on a shared machine hits all of them alike.
      const rounds = options.rounds ?? w.rounds;
      const measured = new Map<string, RunResult[]>();
      for (let round = 1; round <= rounds; round++) {
        if (rounds > 1) console.log(`  round ${round} of ${rounds}`);
        for (const target of workloadTargets) {
          if (aborted) return 130;
          await freshToken();
          const run = await measurer.measure(w, target, { round });
          measured.set(target.name, [...(measured.get(target.name) ?? []), run]);
          const rate = w.messagesPerCall > 1 ? `${run.messagesPerSecond.toFixed(0)} msgs/s` : `${run.rps.toFixed(0)} calls/s`;
          console.log(
            `  ${targetLabel[target.name].padEnd(18)} ${rate.padStart(16)}  p50 ${run.latencyMs.p50.toFixed(2)} ms  ` +
              `p99 ${run.latencyMs.p99.toFixed(2)} ms  proxy ${run.cpuMicrosPerCall.proxy?.toFixed(0) ?? "–"} µs/call  errors ${run.errors}`,
          );
          for (const problem of run.problems) console.log(`    ! ${problem}`);
        }
      }
      for (const target of workloadTargets) runs.push(medianRun(measured.get(target.name)!));
    }

    const auth: AuthRun[] = [];
    if (aborted) return 130;
    if (wants("AUTH")) {
      await freshToken();
      console.log("\nauth service, called directly");
      auth.push(
        ...(await benchAuthService({
          authOrigin,
          auth: platform.auth,
          user,
          accessToken,
          gatewayServiceToken: () => gatewayIdentity.signer.serviceToken("auth"),
          workDir,
          options,
        })),
      );
      for (const a of auth) console.log(`  ${a.name.padEnd(13)} ${a.rps.toFixed(0).padStart(7)} calls/s  errors ${a.errors}`);
    }

    // --profile: one profiled gateway per h2load workload run (W1 when none of them is).
    const profiles: { workload: string; file?: string; failed: number; top: string[] }[] = [];
    if (options.profile) {
      const profiled = workloads.filter((w) => w.load.kind === "h2load-duration");
      for (const workload of profiled.length > 0 ? profiled : allWorkloads.filter((w) => w.id === "W1")) {
        if (aborted) return 130;
        await freshToken();
        const profile = await profileGateway({
          platform: platformOptions,
          ports: platform.ports,
          resultsDir,
          stamp,
          workload,
          accessToken,
          options,
        });
        profiles.push({ workload: workload.id, ...profile, top: profile.file ? summarizeProfile(profile.file) : [] });
      }
    }

    if (aborted) return 130;
    // Node writes a profile when the process ends normally: stop the services now, then read them.
    const serviceProfiles: string[] = [];
    if (options.profileServices) {
      // The summary covers the last measured run (plus the second it takes to stop).
      const lastSeconds = (runs.at(-1)?.seconds ?? 0) + 1;
      await platform.stop();
      for (const name of ["gateway", "auth", "greeter"]) {
        const file = join(resultsDir, `${name}-${stamp}.cpuprofile`);
        if (!existsSync(file)) {
          console.error(`${name} wrote no profile (${file})`);
          continue;
        }
        serviceProfiles.push(file);
        const top = summarizeProfile(file, 12, lastSeconds);
        console.log(
          `\n${name} in the last ${lastSeconds.toFixed(0)} s: most self time, % of busy samples\n${top.map((l) => `  ${l}`).join("\n")}`,
        );
      }
    }
    const checks = evaluateTargets(runs, auth, { idleGatewayMb });
    const errors =
      runs.reduce((sum, r) => sum + r.errors, 0) +
      auth.reduce((sum, a) => sum + a.errors, 0) +
      profiles.reduce((sum, p) => sum + p.failed, 0);
    console.log(renderReport(workloads, runs, auth, checks, skipped));
    for (const p of profiles) {
      if (p.top.length === 0) continue;
      console.log(`\nGateway under ${p.workload}: most self time, % of busy samples\n${p.top.map((l) => `  ${l}`).join("\n")}`);
    }

    const machine = {
      cpu: cpus()[0]?.model,
      cores: cpus().length,
      memoryGb: Math.round(totalmem() / 2 ** 30),
      kernel: release(),
      loadAverageAtStart,
      node: process.version,
      nginx,
      h2load: h2loadVersion(),
    };
    const machineLine =
      `${startedAt.toISOString().slice(0, 10)} on ${machine.cores} × ${machine.cpu}, ${machine.memoryGb} GB, Linux ${machine.kernel}, ` +
      `node ${machine.node}, ${nginx ?? "no nginx"}, ${database}, load average ${loadAverageAtStart[0].toFixed(1)} at the start` +
      `${options.smoke ? " (smoke run)" : ""}; \`npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}\``;
    const report = {
      version: 1,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      mode: options.smoke ? "smoke" : "full",
      options: { ...options, only: options.only ? [...options.only] : undefined },
      machine,
      database,
      workloads: workloads.map(({ body, ...w }) => ({ ...w, requestBytes: body.length })),
      runs,
      auth,
      targets: checks,
      idleGatewayMb,
      skipped,
      profiles,
      serviceProfiles,
      errors,
      markdown: renderMarkdown(workloads, runs, auth, checks, machineLine),
    };
    const jsonFile = join(resultsDir, `bench-${stamp}${options.smoke ? "-smoke" : ""}.json`);
    writeFileSync(jsonFile, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`\nwrote ${jsonFile} (the table as Markdown: node -p 'require("${jsonFile}").markdown')`);
    for (const p of profiles) {
      if (p.file) console.log(`wrote ${p.file} (open it in Chrome DevTools → Performance, or VS Code)`);
    }
    for (const file of serviceProfiles) console.log(`wrote ${file}`);

    if (errors > 0) {
      keepWorkDir = true;
      console.error(`\nFAILED: ${errors} errors (see the ! lines above; process logs in ${workDir})`);
      return 1;
    }
    const missed = checks.filter((c) => c.status === "not met");
    if (options.smoke) console.log("\nsmoke run: no errors (targets are reported, not enforced, in --smoke)");
    else if (missed.length > 0) {
      console.error(`\n${missed.length} target(s) not met (exit code 2).`);
      return 2;
    }
    return 0;
  } catch (error) {
    keepWorkDir = true;
    console.error(`\nbench failed: ${(error as Error).message}\nprocess logs in ${workDir}`);
    return 1;
  } finally {
    await stopAll();
    process.off("SIGINT", interrupted);
    process.off("SIGTERM", interrupted);
    if (!keepWorkDir) rmSync(workDir, { recursive: true, force: true });
  }
}

/** The round with the median throughput, carrying the errors and problems of every round. */
function medianRun(rounds: RunResult[]): RunResult {
  const sorted = [...rounds].sort((a, b) => (a.rps || 0) - (b.rps || 0));
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  if (rounds.length === 1) return median;
  return {
    ...median,
    errors: rounds.reduce((sum, r) => sum + r.errors, 0),
    problems: rounds.flatMap((r) => r.problems),
    rounds: rounds.map((r) => ({
      rps: r.rps,
      p50: r.latencyMs.p50,
      p99: r.latencyMs.p99,
      proxyMicrosPerCall: r.cpuMicrosPerCall.proxy,
    })),
  };
}
