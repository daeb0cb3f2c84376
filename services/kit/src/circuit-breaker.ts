import { ConfigError } from "./config-error.js";

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit (default 5). */
  failures?: number;
  /** How long an open circuit refuses calls before letting one trial call through (default 5000 ms). */
  openMs?: number;
}

/** Closed → (failures in a row) → open, refusing at once → (openMs) → half-open: one trial call decides. */
export interface CircuitBreaker {
  /** Whether a call may go now; when it may not, the ms until the next trial. */
  admit(now?: number): { ok: true } | { ok: false; retryInMs: number };
  success(): void;
  failure(now?: number): void;
  readonly state: "closed" | "open" | "half-open";
}

export function createCircuitBreaker(options: CircuitBreakerOptions = {}): CircuitBreaker {
  const threshold = options.failures ?? 5;
  const openMs = options.openMs ?? 5000;
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > 1000) {
    throw new ConfigError(`circuit failures ${threshold} is not valid; expected a whole number from 1 to 1000`);
  }
  if (!Number.isInteger(openMs) || openMs < 1 || openMs > 600_000) {
    throw new ConfigError(`circuit openMs ${openMs} is not valid; expected a whole number from 1 to 600000`);
  }
  let failures = 0;
  let openedAt = 0;
  let state: CircuitBreaker["state"] = "closed";
  let trialInFlight = false;
  return {
    admit(now = Date.now()) {
      if (state === "closed") return { ok: true };
      if (state === "open") {
        if (now - openedAt < openMs) return { ok: false, retryInMs: openMs - (now - openedAt) };
        state = "half-open";
      }
      if (trialInFlight) return { ok: false, retryInMs: 0 };
      trialInFlight = true;
      return { ok: true };
    },
    success() {
      failures = 0;
      trialInFlight = false;
      state = "closed";
    },
    failure(now = Date.now()) {
      trialInFlight = false;
      failures++;
      if (state === "half-open" || failures >= threshold) {
        state = "open";
        openedAt = now;
      }
    },
    get state() {
      return state;
    },
  };
}
