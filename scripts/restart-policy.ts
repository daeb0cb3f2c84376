// When the npm start supervisor restarts a service that exited, and when it gives up: exponential
// backoff that resets once a run has stayed up, and a limit on failed starts in a row, so that a
// service that cannot start (port taken, bad config, database gone) ends the platform with its
// reason instead of looping forever.

export interface RestartPolicyOptions {
  /** Delay before the first restart of a streak (ms); it doubles with every restart after it. */
  initialDelayMs: number;
  /** The delay never grows past this (ms). */
  maxDelayMs: number;
  /** A run that lasted this long resets the delay to `initialDelayMs` (ms). */
  stableAfterMs: number;
  /** A run shorter than this counts as a failed start (ms). */
  startupMs: number;
  /** Runs in a row shorter than `startupMs` after which the service is given up; 0 never restarts. */
  maxFailedStarts: number;
}

export const defaultRestartPolicy: RestartPolicyOptions = {
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  stableAfterMs: 30_000,
  startupMs: 10_000,
  maxFailedStarts: 5,
};

/**
 * Restart after `delayMs` (`attempt`: the restart's number in the current streak, from 1), or give
 * up (`failedStarts`: runs in a row that ended within the start-up window; 0 when restarts are off).
 */
export type RestartDecision = { restart: true; delayMs: number; attempt: number } | { restart: false; failedStarts: number };

export interface RestartPolicy {
  /** A run of the service ended after `uptimeMs`: restart it after a delay, or give up. */
  next(uptimeMs: number): RestartDecision;
}

export function createRestartPolicy(options: RestartPolicyOptions): RestartPolicy {
  const whole = (name: keyof RestartPolicyOptions, min: number) => {
    const value = options[name];
    if (!Number.isInteger(value) || value < min) {
      throw new Error(`restart policy ${name}=${value} is not valid: expected a whole number ≥ ${min}`);
    }
  };
  whole("initialDelayMs", 1);
  whole("maxDelayMs", options.initialDelayMs);
  whole("stableAfterMs", 0);
  whole("startupMs", 0);
  whole("maxFailedStarts", 0);

  let attempt = 0;
  let failedStarts = 0;
  return {
    next(uptimeMs) {
      if (uptimeMs >= options.stableAfterMs) attempt = 0;
      failedStarts = uptimeMs < options.startupMs ? failedStarts + 1 : 0;
      if (options.maxFailedStarts === 0) return { restart: false, failedStarts: 0 };
      if (failedStarts >= options.maxFailedStarts) return { restart: false, failedStarts };
      attempt++;
      const delayMs = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** (attempt - 1));
      return { restart: true, delayMs, attempt };
    },
  };
}
