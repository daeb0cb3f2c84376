/**
 * A token bucket for events a peer causes (streams it resets, SETTINGS frames it sends): `burst`
 * events at once, refilled at `perSecond`. Refilled lazily when an event is taken, so it costs no
 * timer, and the clock is read only then.
 */
export class TokenBucket {
  private tokens: number;
  private last = 0;

  constructor(
    private readonly burst: number,
    private readonly perSecond: number,
  ) {
    this.tokens = burst;
  }

  /** Takes one token; false when the bucket is empty (the peer went over its budget). */
  take(now: number = Date.now()): boolean {
    if (!this.has(now)) return false;
    this.tokens -= 1;
    return true;
  }

  /** Whether a token is left (refilled up to `now`), without taking it. */
  has(now: number = Date.now()): boolean {
    if (this.tokens < this.burst && now > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.perSecond) / 1000);
    }
    this.last = now;
    return this.tokens >= 1;
  }
}
