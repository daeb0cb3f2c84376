import { ConfigError } from "./config-error.js";

/** What a service's `main` returns: how to stop it. */
export interface Stoppable {
  close(): Promise<void>;
}

/**
 * Runs a service process: a bad setting or a taken port ends it with one line on stderr and
 * exit code 1 (no stack trace); SIGTERM or SIGINT closes it gracefully and exits 0.
 */
export function runService(name: string, main: () => Promise<Stoppable>): void {
  const fail = (error: unknown): never => {
    process.stderr.write(`${name}: ${describeStartupError(error)}\n`);
    process.exit(1);
  };
  main().then((service) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`${name}: ${signal}, shutting down\n`);
      service.close().then(
        () => process.exit(0),
        (error: unknown) => fail(error),
      );
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
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
