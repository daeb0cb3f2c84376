// The supervisor's restart rule: backoff that doubles to a cap and resets after a stable run, and
// a service that keeps failing to start is given up instead of restarted forever.
import { describe, expect, it } from "vitest";
import { createRestartPolicy, defaultRestartPolicy, type RestartDecision } from "./restart-policy.js";

const delays = (decisions: RestartDecision[]) => decisions.map((d) => (d.restart ? d.delayMs : "give up"));

describe("restart policy", () => {
  it("doubles the delay from 0.5 s to 30 s while a service keeps crashing after it started", () => {
    const policy = createRestartPolicy(defaultRestartPolicy);
    // Each run lasts 15 s: past the start-up window, short of the 30 s that count as stable.
    const decisions = Array.from({ length: 9 }, () => policy.next(15_000));
    expect(delays(decisions)).toEqual([500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
    expect(decisions.map((d) => (d.restart ? d.attempt : 0))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("starts again from 0.5 s once a run has stayed up", () => {
    const policy = createRestartPolicy(defaultRestartPolicy);
    expect(delays([policy.next(15_000), policy.next(15_000), policy.next(15_000)])).toEqual([500, 1000, 2000]);
    expect(policy.next(30_000)).toEqual({ restart: true, delayMs: 500, attempt: 1 });
  });

  it("gives up after five failed starts in a row, the crash that began them not counted", () => {
    const policy = createRestartPolicy(defaultRestartPolicy);
    const decisions = [policy.next(3_600_000), ...Array.from({ length: 5 }, () => policy.next(800))];
    expect(delays(decisions)).toEqual([500, 1000, 2000, 4000, 8000, "give up"]);
    expect(decisions.at(-1)).toEqual({ restart: false, failedStarts: 5 });
  });

  it("counts failed starts only in a row", () => {
    const policy = createRestartPolicy({ ...defaultRestartPolicy, maxFailedStarts: 2 });
    expect(policy.next(800).restart).toBe(true);
    expect(policy.next(12_000).restart).toBe(true); // came up, crashed later: the count starts again
    expect(policy.next(800).restart).toBe(true);
    expect(policy.next(800)).toEqual({ restart: false, failedStarts: 2 });
  });

  it("never restarts with a limit of 0", () => {
    const policy = createRestartPolicy({ ...defaultRestartPolicy, maxFailedStarts: 0 });
    expect(policy.next(3_600_000)).toEqual({ restart: false, failedStarts: 0 });
  });

  it("names a bad option", () => {
    expect(() => createRestartPolicy({ ...defaultRestartPolicy, initialDelayMs: 0 })).toThrow(
      "restart policy initialDelayMs=0 is not valid: expected a whole number ≥ 1",
    );
    expect(() => createRestartPolicy({ ...defaultRestartPolicy, maxDelayMs: 100 })).toThrow("maxDelayMs=100");
  });
});
