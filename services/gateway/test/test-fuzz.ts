// Test helper (not a test): how long and with which seed the property-based (fuzz) tests run.
//
// `npm test` runs each property for a few seconds with a fixed seed, so CI is repeatable;
// `npm run fuzz` runs the same properties much longer. Environment:
//   FUZZ_SEED     the seed (default 20261204); a failure prints the seed and path that reproduce it
//   FUZZ_SECONDS  the time budget of each property (default: the property's own, a few seconds)
//   FUZZ_RUNS     the largest number of runs of each property (default: 1000, unbounded with FUZZ_SECONDS)
//   FUZZ_PATH     with FUZZ_SEED, replays one counterexample (the `path` a failure prints; pick the test with -t)
import fc, { type IRawProperty, type Parameters } from "fast-check";
import { it } from "vitest";

const DEFAULT_SEED = 20_261_204;

function envNumber(name: string): number | undefined {
  const text = process.env[name];
  if (text === undefined || text === "") return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new Error(`${name} must be a non-negative integer, got "${text}"`);
  }
  return value;
}

/** The seed of this run: FUZZ_SEED, or the fixed default. */
const fuzzSeed: number = envNumber("FUZZ_SEED") ?? DEFAULT_SEED;

/** The time budget of a property: FUZZ_SECONDS, or `defaultSeconds`. */
function budgetMs(defaultSeconds: number): number {
  return (envNumber("FUZZ_SECONDS") ?? defaultSeconds) * 1000;
}

/**
 * fast-check parameters for one property: the seed, and runs bounded by FUZZ_RUNS and by time
 * (reaching the time budget ends the property as passed, after the runs done so far). A failure
 * reports its seed and path in the error message (`{ seed: …, path: … }`), and the counterexample.
 */
function fuzzParameters<T>(defaultSeconds = 3): Parameters<T> {
  const long = envNumber("FUZZ_SECONDS") !== undefined;
  return {
    seed: fuzzSeed,
    numRuns: envNumber("FUZZ_RUNS") ?? (long ? 1_000_000_000 : 1000),
    interruptAfterTimeLimit: budgetMs(defaultSeconds),
    markInterruptAsFailure: false,
    ...(process.env.FUZZ_PATH ? { path: process.env.FUZZ_PATH } : {}),
  };
}

/** A vitest timeout for a property run with `fuzzParameters(defaultSeconds)`: its budget plus time to shrink. */
function fuzzTimeout(defaultSeconds = 3): number {
  return budgetMs(defaultSeconds) * 2 + 30_000;
}

/**
 * Collects errors that escape to the process (uncaught exceptions, unhandled rejections) from now
 * until `stop()`: code under test that throws from a socket callback fails the property that caused
 * it, with its counterexample, instead of only the test file.
 */
export function watchEscapes(): { readonly errors: unknown[]; stop(): void } {
  const errors: unknown[] = [];
  const onEscape = (error: unknown) => errors.push(error);
  process.on("uncaughtException", onEscape);
  process.on("unhandledRejection", onEscape);
  return {
    errors,
    stop() {
      process.off("uncaughtException", onEscape);
      process.off("unhandledRejection", onEscape);
    },
  };
}

/**
 * A vitest test that checks `property` with `fuzzParameters(defaultSeconds)`: the seed, a time
 * budget, and a timeout that leaves room to shrink a counterexample.
 */
export function itHolds<Ts>(name: string, property: IRawProperty<Ts>, defaultSeconds = 3): void {
  it(
    name,
    async () => {
      await fc.assert(property, fuzzParameters(defaultSeconds));
    },
    fuzzTimeout(defaultSeconds),
  );
}
