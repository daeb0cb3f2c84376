import { type Logger, pino } from "pino";

export type { Logger };

export interface LoggerOptions {
  service: string;
  /** trace, debug, info, warn, error, fatal or silent (default LOG_LEVEL or info). */
  level?: string;
}

/** JSON lines on stdout, one object per event, with the service name on each. */
export function createLogger(options: LoggerOptions): Logger {
  return pino({
    level: options.level ?? process.env.LOG_LEVEL ?? "info",
    base: { service: options.service },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}
