import { ConfigError } from "./config-error.js";

/** What a service's `main` returns: how to stop it. */
export interface Stoppable {
  close(): Promise<void>;
}

/**
 * Runs a service process: a bad setting or a taken port ends it with one line on stderr and
 * exit code 1 (no stack trace); SIGTERM or SIGINT closes it gracefully and exits 0. Under the
 * `npm start` supervisor (PORTICO_SUPERVISED=1, stdin a pipe from it) the service also stops when
 * that pipe closes, so a supervisor that is killed outright leaves no service behind.
 */
export function runService(name: string, main: () => Promise<Stoppable>): void {
  const fail = (error: unknown): never => {
    process.stderr.write(`${name}: ${describeStartupError(error)}\n`);
    process.exit(1);
  };
  let service: Stoppable | undefined;
  let stopping = false;
  const stop = (reason: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`${name}: ${reason}, shutting down\n`);
    // Still starting: nothing is acknowledged yet, so there is nothing to drain.
    if (!service) process.exit(0);
    service.close().then(
      () => process.exit(0),
      (error: unknown) => fail(error),
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  if (process.env.PORTICO_SUPERVISED === "1") {
    process.stdin.on("end", () => stop("supervisor gone"));
    process.stdin.on("error", () => stop("supervisor gone"));
    process.stdin.resume();
  }
  main().then((started) => {
    service = started;
  }, fail);
}

/** One line that says what went wrong at start-up. */
export function describeStartupError(error: unknown): string {
  if (error instanceof ConfigError) return error.message;
  const e = error as NodeJS.ErrnoException & { port?: number; address?: string };
  if (e?.code === "EADDRINUSE") return `port ${e.port} on ${e.address} is already in use`;
  if (e?.code === "EACCES" && e.port !== undefined) return `no permission to listen on port ${e.port}`;
  if (e?.code === "ECONNREFUSED") return `cannot connect to ${e.address}:${e.port} (${e.message})`;
  return e instanceof Error ? e.message : String(error);
}
