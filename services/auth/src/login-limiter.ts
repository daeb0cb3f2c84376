import { tooManyAttempts } from "./error-details.js";

export interface LoginLimits {
  /** Failed logins of one account before it is locked (default 5). */
  accountFailures?: number;
  /** First lockout; each further failure doubles it up to `accountMaxLockMs` (default 30 s). */
  accountLockMs?: number;
  /** Longest lockout (default 15 min). */
  accountMaxLockMs?: number;
  /** Failed logins from one IP address within `ipWindowMs` before it is refused (default 50). */
  ipFailures?: number;
  /** Window of the per-IP count, and how long a limited address waits (default 15 min). */
  ipWindowMs?: number;
  /** Sign-ups accepted from one IP address per `signUpWindowMs` (default 20). */
  signUps?: number;
  signUpWindowMs?: number;
}

export interface LoginLimiter {
  /** Throws `resource_exhausted` with a retry delay when the account or the address is locked. */
  checkLogin(email: string, ip: string): void;
  recordFailure(email: string, ip: string): void;
  /** A successful login resets the account's count. */
  recordSuccess(email: string): void;
  /** Counts a sign-up attempt from `ip`; throws `resource_exhausted` when there were too many. */
  checkSignUp(ip: string): void;
}

interface Counter {
  count: number;
  /** Start of the counting window, or time of the last failure for accounts. */
  since: number;
  until: number;
}

const MAX_TRACKED = 100_000;

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0)
    throw new Error(`login limits: ${name} ${value} is not valid; expected a positive number`);
  return value;
}

/**
 * Per-process brute-force limits: an account locks after a few failures with a doubling lockout, an
 * address after many failures for a window, and sign-ups are counted per address. Refused attempts
 * never reach the password hash, so they cost nothing.
 */
export function createLoginLimiter(limits: LoginLimits = {}): LoginLimiter {
  const accountFailures = positive("accountFailures", limits.accountFailures ?? 5);
  const accountLockMs = positive("accountLockMs", limits.accountLockMs ?? 30_000);
  const accountMaxLockMs = positive("accountMaxLockMs", limits.accountMaxLockMs ?? 15 * 60_000);
  const ipFailures = positive("ipFailures", limits.ipFailures ?? 50);
  const ipWindowMs = positive("ipWindowMs", limits.ipWindowMs ?? 15 * 60_000);
  const signUps = positive("signUps", limits.signUps ?? 20);
  const signUpWindowMs = positive("signUpWindowMs", limits.signUpWindowMs ?? 60 * 60_000);
  const accounts = new Map<string, Counter>();
  const ips = new Map<string, Counter>();
  const signUpIps = new Map<string, Counter>();

  // Bounded memory: when full, forget the oldest entries (Map keeps insertion order).
  function remember(map: Map<string, Counter>, key: string, counter: Counter) {
    map.delete(key);
    if (map.size >= MAX_TRACKED) {
      const oldest = map.keys().next().value;
      if (oldest !== undefined) map.delete(oldest);
    }
    map.set(key, counter);
  }

  function windowed(map: Map<string, Counter>, key: string, windowMs: number, now: number): Counter {
    const counter = map.get(key);
    if (counter && now - counter.since < windowMs) return counter;
    const fresh = { count: 0, since: now, until: 0 };
    remember(map, key, fresh);
    return fresh;
  }

  return {
    checkLogin(email, ip) {
      const now = Date.now();
      const account = accounts.get(email);
      if (account && account.until > now) throw tooManyAttempts("too many failed logins for this account", account.until - now);
      const address = ips.get(ip);
      if (address && address.until > now) throw tooManyAttempts("too many failed logins from this address", address.until - now);
    },
    recordFailure(email, ip) {
      const now = Date.now();
      const account = windowed(accounts, email, accountMaxLockMs * 2, now);
      account.count++;
      account.since = now;
      if (account.count >= accountFailures) {
        account.until = now + Math.min(accountLockMs * 2 ** (account.count - accountFailures), accountMaxLockMs);
      }
      const address = windowed(ips, ip, ipWindowMs, now);
      address.count++;
      if (address.count >= ipFailures) address.until = address.since + ipWindowMs;
    },
    recordSuccess(email) {
      accounts.delete(email);
    },
    checkSignUp(ip) {
      const now = Date.now();
      const counter = windowed(signUpIps, ip, signUpWindowMs, now);
      if (counter.count >= signUps)
        throw tooManyAttempts("too many sign-ups from this address", counter.since + signUpWindowMs - now);
      counter.count++;
    },
  };
}
