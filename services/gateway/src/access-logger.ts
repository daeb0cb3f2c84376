import { type Logger, pino } from "pino";

export interface AccessLoggerOptions {
  /** The pino level of the access log (info writes one line per call). */
  level: string;
  /** File descriptor the lines go to (default 1, stdout). */
  fd?: number;
}

export interface AccessLogger {
  readonly logger: Logger;
  /** Writes what is buffered (call on shutdown; also done on process exit). */
  flush(): void;
}

/**
 * The access log: the same JSON lines as the service logger (`service`, `log: "access"`, ISO time,
 * level label), written through an asynchronous buffered destination so a call does not pay a
 * synchronous write(2) of its own line.
 */
export function createAccessLogger(options: AccessLoggerOptions): AccessLogger {
  const destination = pino.destination({ dest: options.fd ?? 1, sync: false, minLength: 4096 });
  const logger = pino(
    {
      level: options.level,
      base: { service: "gateway", log: "access" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  return {
    logger,
    flush() {
      try {
        destination.flushSync();
      } catch {
        // Not ready yet or already closed: nothing to write.
      }
    },
  };
}
