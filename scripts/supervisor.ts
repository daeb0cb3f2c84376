// The npm start supervisor: runs each service as its own process (node, or the embedded PostgreSQL)
// with prefixed logs, restarts one that exits unexpectedly (with backoff, said in the log), gives up on
// one that keeps failing to start, and stops them all on request in reverse order of start (the
// database last), leaving no process behind.
import { type ChildProcess, spawn } from "node:child_process";
import { answers200 } from "./answers-200.js";
import { checkPortFree } from "./check-port-free.js";
import { prefixLines } from "./prefix-lines.js";
import { createRestartPolicy, type RestartPolicy, type RestartPolicyOptions } from "./restart-policy.js";

export interface SupervisedService {
  name: string;
  /** The program (default: this node), e.g. the embedded PostgreSQL's server. */
  command?: string;
  /** Its arguments; for node: flags, then the entry point. */
  args: string[];
  /** Run as this user and group (PostgreSQL refuses root). */
  uid?: number;
  gid?: number;
  /** Checked free before every restart: [env variable that sets it, port]. */
  ports: [env: string, port: number][];
  /** ANSI colour of its log prefix. */
  color: number;
  /** Answers 200 once the service serves (its /readyz). */
  readyUrl?: string;
  /** Says whether it serves, where there is no readyUrl (the database answers a query). */
  isReady?: () => Promise<boolean>;
  /**
   * Started only once these services answer ready (the gateway after the services it routes to), and
   * stopped only once they have exited.
   */
  startAfter?: string[];
  /** Runs before every start (e.g. clears a killed run's lock file); a throw is a failed start, its message the reason. */
  beforeStart?: () => Promise<void>;
  /** The signal that stops it gracefully (default SIGTERM; PostgreSQL's fast shutdown is SIGINT). */
  stopSignal?: NodeJS.Signals;
  /**
   * In a process group of its own, so that a terminal's Ctrl-C reaches only the supervisor, which
   * stops it after the services that use it (the database).
   */
  ownProcessGroup?: boolean;
}

export interface SupervisorOptions {
  services: SupervisedService[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  restart: RestartPolicyOptions;
  /** Called once, when every service has stopped after `stop`: the supervisor's exit code. */
  onStopped(code: number): void;
  /** Called when a service first answers ready (the platform's start). */
  onReady?(name: string): void;
  /** Milliseconds between SIGTERM and SIGKILL when stopping. */
  killAfterMs?: number;
  /** How long the first start of every service may take, in ms (default 60 s). */
  startTimeoutMs?: number;
}

/** How the first start ended: every service ready, or the ones that were not (none when it was stopped). */
export type StartOutcome = { ready: true } | { ready: false; notReady: string[] };

export interface Supervisor {
  /**
   * Every service started, in order, and answered ready. Until then a service that exits stops
   * the platform (its configuration is wrong, and the user is watching); after it, a service
   * that exits is restarted.
   */
  readonly started: Promise<StartOutcome>;
  /** Stops every service (SIGTERM, then SIGKILL after the grace) and calls `onStopped(code)`. */
  stop(code: number): void;
  readonly stopping: boolean;
}

interface Running {
  spec: SupervisedService;
  policy: RestartPolicy;
  proc?: ChildProcess;
  startedAt: number;
  /** This run answered ready (the platform's first start): when it ends, it was no failed start. */
  answeredReady: boolean;
  /** The last line the service wrote on stderr, or why the supervisor could not start it. */
  lastError: string;
  restartTimer?: NodeJS.Timeout;
  /** Sent its stop signal (stopping). */
  signalled: boolean;
}

const seconds = (ms: number) => `${Number((ms / 1000).toFixed(1))}s`;
const note = (line: string) => process.stderr.write(`portico: ${line}\n`);

export function createSupervisor(options: SupervisorOptions): Supervisor {
  const killAfterMs = options.killAfterMs ?? 10_000;
  let ready = false;
  let stopping = false;
  let exitCode = 0;
  let finished = false;
  const services = options.services.map<Running>((spec) => ({
    spec,
    policy: createRestartPolicy(options.restart),
    startedAt: 0,
    answeredReady: false,
    lastError: "",
    signalled: false,
  }));

  const alive = (s: Running) => s.proc !== undefined && s.proc.exitCode === null && s.proc.signalCode === null;
  const finishIfStopped = () => {
    if (!stopping || finished) return;
    // Reverse order of start: a service is stopped once every service started after it has exited.
    for (const s of services) {
      if (s.signalled || !alive(s)) continue;
      const usedBy = services.filter((o) => o !== s && alive(o) && (o.spec.startAfter ?? []).includes(s.spec.name));
      if (usedBy.length > 0) continue;
      s.signalled = true;
      s.proc?.kill(s.spec.stopSignal ?? "SIGTERM");
    }
    if (services.some(alive)) return;
    finished = true;
    options.onStopped(exitCode);
  };

  const spawnService = (s: Running) => {
    const proc = spawn(s.spec.command ?? process.execPath, s.spec.args, {
      cwd: options.cwd,
      env: options.env,
      stdio: ["pipe", "pipe", "pipe"],
      uid: s.spec.uid,
      gid: s.spec.gid,
      detached: s.spec.ownProcessGroup ?? false,
    });
    s.proc = proc;
    s.startedAt = Date.now();
    s.answeredReady = false;
    // stdin stays open: the service stops when it closes, i.e. when the supervisor is gone.
    proc.stdin.on("error", () => {});
    prefixLines({ name: s.spec.name, color: s.spec.color, input: proc.stdout, output: process.stdout });
    prefixLines({
      name: s.spec.name,
      color: s.spec.color,
      input: proc.stderr,
      output: process.stderr,
      onLine: (line) => {
        if (line.trim()) s.lastError = line.trim();
      },
    });
    proc.on("error", (error) => {
      s.lastError = error.message;
    });
    proc.on("exit", (code, signal) => {
      proc.stdin.destroy();
      if (stopping) return finishIfStopped();
      // A run that served (answered ready) was a start that worked, however short it was.
      const uptimeMs = Date.now() - s.startedAt;
      const counted = s.answeredReady ? Math.max(uptimeMs, options.restart.startupMs) : uptimeMs;
      exited(s, `${s.spec.name} exited (${signal ?? `exit code ${code}`})`, counted);
    });
  };

  /**
   * A service ended or could not be started (`what` says which, e.g. "auth exited (SIGKILL)"):
   * restart it after the policy's delay, or stop the platform.
   */
  const exited = (s: Running, what: string, uptimeMs: number) => {
    if (!ready) {
      note(`${what}; stopping the others`);
      return supervisor.stop(1);
    }
    const decision = s.policy.next(uptimeMs);
    if (!decision.restart) {
      note(
        decision.failedStarts === 0
          ? `${what}; restarts are off (PORTICO_RESTART_LIMIT=0); stopping the others`
          : `${s.spec.name} failed to start ${decision.failedStarts} times in a row${s.lastError ? `: ${s.lastError}` : ""}; stopping the others`,
      );
      return supervisor.stop(1);
    }
    note(`${what}; restarting in ${seconds(decision.delayMs)} (restart ${decision.attempt})`);
    s.restartTimer = setTimeout(() => void restart(s), decision.delayMs);
  };

  const restart = async (s: Running) => {
    s.restartTimer = undefined;
    if (stopping) return finishIfStopped();
    try {
      for (const [env, port] of s.spec.ports) await checkPortFree(env, port);
    } catch (error) {
      s.lastError = (error as Error).message;
      if (stopping) return finishIfStopped();
      return exited(s, `${s.spec.name} cannot start: ${s.lastError}`, 0);
    }
    if (stopping) return finishIfStopped();
    s.lastError = "";
    if (!(await prepared(s))) return;
    spawnService(s);
  };

  /** Runs the service's beforeStart: false (and the failure handled) when it threw. */
  const prepared = async (s: Running): Promise<boolean> => {
    try {
      await s.spec.beforeStart?.();
    } catch (error) {
      s.lastError = (error as Error).message;
      if (stopping) finishIfStopped();
      else exited(s, `${s.spec.name} cannot start: ${s.lastError}`, 0);
      return false;
    }
    if (stopping) {
      finishIfStopped();
      return false;
    }
    return true;
  };

  const answers = (s: Running) => (s.spec.isReady ? s.spec.isReady() : answers200(s.spec.readyUrl ?? ""));

  /** Starts the services whose dependencies answer ready, until all of them do. */
  const startAll = async (): Promise<StartOutcome> => {
    const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
    const answered = new Set<string>();
    const launching = new Set<Running>();
    while (!stopping) {
      for (const s of services) {
        if (s.proc || launching.has(s) || !(s.spec.startAfter ?? []).every((name) => answered.has(name))) continue;
        launching.add(s);
        if (await prepared(s)) spawnService(s); // else prepared() has stopped the platform
      }
      const waiting = services.filter((s) => s.proc && !answered.has(s.spec.name));
      for (const s of waiting) {
        if (!stopping && (await answers(s))) {
          answered.add(s.spec.name);
          options.onReady?.(s.spec.name);
        }
      }
      if (answered.size === services.length) {
        ready = true;
        for (const s of services) s.answeredReady = true;
        return { ready: true };
      }
      if (Date.now() > deadline)
        return { ready: false, notReady: services.map((s) => s.spec.name).filter((n) => !answered.has(n)) };
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    return { ready: false, notReady: [] };
  };

  let started: Promise<StartOutcome> | undefined;
  const supervisor: Supervisor = {
    get started() {
      return started as Promise<StartOutcome>;
    },
    stop(code) {
      if (stopping) return;
      stopping = true;
      exitCode = code;
      for (const s of services) clearTimeout(s.restartTimer);
      setTimeout(() => {
        for (const s of services) if (alive(s)) s.proc?.kill("SIGKILL");
      }, killAfterMs).unref();
      finishIfStopped();
    },
    get stopping() {
      return stopping;
    },
  };

  started = startAll();
  return supervisor;
}
