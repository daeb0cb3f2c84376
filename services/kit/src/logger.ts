import { type Logger, pino } from "pino";
import { currentTraceId } from "./tracing.js";

export type { Logger };

export interface LoggerOptions {
  service: string;
  /** trace, debug, info, warn, error, fatal or silent (default LOG_LEVEL or info). */
  level?: string;
  /** Where the lines go (default stdout). */
  destination?: pino.DestinationStream;
}

/**
 * JSON lines on stdout, one object per event, with the service name on each and, while tracing is
 * on, the `trace_id` of the call it is logged for.
 *
 * Written synchronously, each line as it is logged: pino's default buffers lines written while one is
 * in flight and writes them out at exit, and its writer (sonic-boom 4) retries a write that failed
 * with EPIPE every 100 ms forever, so a service whose stdout reader was gone (its `npm start`
 * supervisor killed) and that logged two lines on its way out never exited (`scripts/start.test.ts`).
 * A line written at once that meets EPIPE turns the logger off instead. The services log events, not
 * calls (the gateway's access log has its own writer), so a write per line costs nothing measurable.
 */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level ?? process.env.LOG_LEVEL ?? "info",
      base: { service: options.service },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // A new object each time: pino copies the line's own fields into the one the mixin returns, so a
      // shared one carried every earlier line's fields into every later line.
      mixin: () => {
        const traceId = currentTraceId();
        return traceId === undefined ? {} : { trace_id: traceId };
      },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
