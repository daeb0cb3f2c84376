import { Code, ConnectError } from "@connectrpc/connect";
import { type Identity, identityHeaders, type TokenSigner } from "@portico/kit";
import { connectError } from "./connect-error.js";

/** The user as the auth service knows it (the client address is the gateway's, per call). */
export type UserIdentity = Omit<Identity, "clientAddress">;

/** What the auth service says about a token. */
export interface VerifiedToken {
  identity: UserIdentity;
  /** When the token expires (ms since epoch). */
  expiresAtMs: number;
}

/** Identity headers with a signed assertion, and when to sign a new one. */
type Signed = { headers: Readonly<Record<string, string>>; resignAtMs: number };

/** A cached decision: the identity and the headers the gateway sets for it. */
export interface AuthEntry {
  readonly identity: UserIdentity;
  readonly expiresAtMs: number;
  readonly verifiedAtMs: number;
  /** Identity headers with a signed `x-portico-identity`, per audience and client address, re-signed shortly before expiry. */
  readonly signed: Map<string, Signed>;
}

export interface AuthCacheOptions {
  /** Asks the auth service; rejects with `unauthenticated` for a bad token, anything else when it cannot answer. */
  verify: (token: string) => Promise<VerifiedToken>;
  /** The gateway's signer: assertions are addressed to the service a call goes to. */
  signer: TokenSigner;
  /** Longest a decision is trusted (ms). */
  ttlMs: number;
  /** The TTL while the revocation stream is down (ms). */
  degradedTtlMs: number;
  /**
   * Whether `headers` also carries the identity as plain, unsigned `x-user-*` and `x-session-id`
   * copies beside the assertion (default false; the gateway config's `identityClaimHeaders`).
   */
  claimHeaders?: boolean;
  /** Entries kept at most (default 100 000); as many signed assertions, ended sessions and withdrawn keys. */
  maxEntries?: number;
  /** How long a refused token is answered from memory (default 1000 ms). */
  negativeTtlMs?: number;
  /**
   * How long an ended session is remembered (default 5 min): an auth replica that has not yet read
   * the revocation may still call its tokens valid, and that answer must not be believed.
   */
  revokedSessionMemoryMs?: number;
}

export interface AuthCacheStats {
  hits: number;
  misses: number;
  size: number;
}

export interface AuthCache {
  /** A valid cached decision for `token`, or undefined. */
  get(token: string): AuthEntry | undefined;
  /** Asks the auth service (one call per token at a time) and caches the answer; throws ConnectError. */
  verify(token: string): Promise<AuthEntry>;
  /**
   * The identity headers of an entry for a call to `audience` (a service name) from `clientAddress`:
   * the assertion is signed once per (identity, audience, address), shared by the entries of every
   * token of that identity, and reused until close to its expiry.
   */
  headers(entry: AuthEntry, audience: string, clientAddress: string): Readonly<Record<string, string>>;
  evictSessions(sessionIds: readonly string[]): void;
  evictUsers(userIds: readonly string[]): void;
  /**
   * Evicts the tokens signed with these withdrawn signing keys (the `kid` of their JWT header) and
   * refuses such tokens for a while, even when an auth replica that has not heard yet calls them valid.
   */
  evictKeys(keyIds: readonly string[]): void;
  clear(): void;
  /** While degraded (revocation stream down) decisions live at most `degradedTtlMs`. */
  setDegraded(degraded: boolean): void;
  readonly degraded: boolean;
  stats(): AuthCacheStats;
  close(): void;
}

function addToIndex(index: Map<string, Set<string>>, key: string, token: string): void {
  let set = index.get(key);
  if (set === undefined) {
    set = new Set();
    index.set(key, set);
  }
  set.add(token);
}

/** The `kid` of a JWT's header, or "" (the one thing the gateway reads in a token; only on a withdrawal). */
function tokenKeyId(token: string): string {
  const dot = token.indexOf(".");
  if (dot <= 0) return "";
  try {
    const header: unknown = JSON.parse(Buffer.from(token.slice(0, dot), "base64url").toString());
    const kid = typeof header === "object" && header !== null ? (header as { kid?: unknown }).kid : undefined;
    return typeof kid === "string" ? kid : "";
  } catch {
    return "";
  }
}

function removeFromIndex(index: Map<string, Set<string>>, key: string, token: string): void {
  const set = index.get(key);
  if (set === undefined) return;
  set.delete(token);
  if (set.size === 0) index.delete(key);
}

/**
 * Caches the auth service's decisions by token, for at most the token's remaining life and the
 * configured TTL (a few seconds while revocations cannot be heard), evicts on revocation, signs
 * the identity assertion once per identity, audience and client address, and shares one verification among the concurrent misses of a token.
 */
export function createAuthCache(options: AuthCacheOptions): AuthCache {
  const maxEntries = options.maxEntries ?? 100_000;
  const claimHeaders = options.claimHeaders === true;
  const negativeTtlMs = options.negativeTtlMs ?? 1000;
  const resignBeforeMs = Math.min(20_000, (options.signer.ttlSeconds * 1000) / 3);
  const entries = new Map<string, AuthEntry>();
  const bySession = new Map<string, Set<string>>();
  const byUser = new Map<string, Set<string>>();
  const refused = new Map<string, { until: number; error: ConnectError }>();
  const inFlight = new Map<string, Promise<AuthEntry>>();
  // Sessions the revocation stream ended → until when that is remembered (insertion order = age).
  const endedSessions = new Map<string, number>();
  const endedMemoryMs = options.revokedSessionMemoryMs ?? 5 * 60_000;
  // Signing keys the revocation stream withdrew → until when that is remembered (as ended sessions).
  const withdrawnKeys = new Map<string, number>();
  let ttlMs = options.degradedTtlMs;
  let degraded = true;
  let hits = 0;
  let misses = 0;
  // Bumped by every eviction, so an Authenticate answer that raced a revocation is not cached.
  let generation = 0;
  // Signed identity headers by everything they assert (audience, client address, user, session,
  // tier, roles), shared by the entries of all tokens that assert it: a session's next access token
  // (each Refresh makes one) costs no new signature at its first call, and the backend verifies one
  // assertion instead of one per token. Reached only with an identity the auth service has just
  // vouched for; any eviction empties it.
  const assertions = new Map<string, Signed>();

  // Ended sessions and withdrawn keys, each kept in expiry order (re-added at the end) and at most
  // `maxEntries` long: a flood of revocations forgets the oldest first, never grows without bound.
  const remember = (memory: Map<string, number>, id: string, until: number) => {
    memory.delete(id);
    memory.set(id, until);
    if (memory.size > maxEntries) memory.delete(memory.keys().next().value as string);
  };

  const forgetBefore = (memory: Map<string, number>, now: number) => {
    for (const [id, until] of memory) {
      if (until > now) break;
      memory.delete(id);
    }
  };

  const remove = (token: string) => {
    const entry = entries.get(token);
    if (entry === undefined) return;
    entries.delete(token);
    removeFromIndex(bySession, entry.identity.sessionId, token);
    removeFromIndex(byUser, entry.identity.userId, token);
  };

  const sign = (identity: UserIdentity, audience: string, clientAddress: string, now: number): Signed => {
    const { token, expiresAt } = options.signer.assertion({ ...identity, clientAddress }, audience, Math.floor(now / 1000));
    const headers: Record<string, string> = claimHeaders
      ? {
          [identityHeaders.userId]: identity.userId,
          [identityHeaders.tier]: identity.tier,
          [identityHeaders.roles]: identity.roles.join(","),
          [identityHeaders.sessionId]: identity.sessionId,
          [identityHeaders.assertion]: token,
        }
      : { [identityHeaders.assertion]: token };
    return { headers, resignAtMs: expiresAt * 1000 - resignBeforeMs };
  };

  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [token, entry] of entries) {
      if (entry.expiresAtMs <= now || now - entry.verifiedAtMs >= ttlMs) remove(token);
    }
    for (const [token, r] of refused) if (r.until <= now) refused.delete(token);
    for (const [key, signed] of assertions) if (signed.resignAtMs <= now) assertions.delete(key);
    forgetBefore(endedSessions, now);
    forgetBefore(withdrawnKeys, now);
  }, 10_000);
  sweep.unref();

  const cache: AuthCache = {
    get(token) {
      const entry = entries.get(token);
      if (entry === undefined) return undefined;
      const now = Date.now();
      if (entry.expiresAtMs <= now || now - entry.verifiedAtMs >= ttlMs) {
        remove(token);
        return undefined;
      }
      hits++;
      return entry;
    },
    verify(token) {
      const pending = inFlight.get(token);
      if (pending !== undefined) return pending;
      misses++;
      const known = refused.get(token);
      if (known !== undefined) {
        if (known.until > Date.now()) return Promise.reject(known.error);
        refused.delete(token);
      }
      const startGeneration = generation;
      const promise = options.verify(token).then(
        (verified) => {
          inFlight.delete(token);
          const now = Date.now();
          const entry: AuthEntry = {
            identity: verified.identity,
            expiresAtMs: verified.expiresAtMs,
            verifiedAtMs: now,
            signed: new Map(),
          };
          if (verified.expiresAtMs <= now) throw connectError("access token expired", Code.Unauthenticated);
          // Auth replicas learn of each other's revocations by polling (about 1 s): the one that
          // answered may not know yet what the stream already said.
          const ended = endedSessions.get(verified.identity.sessionId);
          if (ended !== undefined && ended > now) throw connectError("access token has been revoked", Code.Unauthenticated);
          if (withdrawnKeys.size > 0 && (withdrawnKeys.get(tokenKeyId(token)) ?? 0) > now) {
            throw connectError("access token is signed with a withdrawn key", Code.Unauthenticated);
          }
          if (generation === startGeneration && ttlMs > 0) {
            if (entries.size >= maxEntries) {
              const oldest = entries.keys().next().value;
              if (oldest !== undefined) remove(oldest);
            }
            remove(token);
            entries.set(token, entry);
            addToIndex(bySession, verified.identity.sessionId, token);
            addToIndex(byUser, verified.identity.userId, token);
          }
          return entry;
        },
        (error: unknown) => {
          inFlight.delete(token);
          const failure = ConnectError.from(error);
          if (failure.code === Code.Unauthenticated) {
            const refusal = connectError(failure.rawMessage || "invalid access token", Code.Unauthenticated);
            if (refused.size >= 10_000) refused.clear();
            refused.set(token, { until: Date.now() + negativeTtlMs, error: refusal });
            throw refusal;
          }
          throw connectError("the auth service is unavailable", Code.Unavailable, undefined, error);
        },
      );
      inFlight.set(token, promise);
      return promise;
    },
    headers(entry, audience, clientAddress) {
      const key = `${audience} ${clientAddress}`;
      const now = Date.now();
      let signed = entry.signed.get(key);
      if (signed === undefined || now >= signed.resignAtMs) {
        const { userId, sessionId, tier, roles } = entry.identity;
        // Unambiguous whatever the values hold (roles ["a,b"] and ["a", "b"] are not the same assertion).
        const assertionKey = JSON.stringify([audience, clientAddress, userId, sessionId, tier, roles]);
        signed = assertions.get(assertionKey);
        if (signed === undefined || now >= signed.resignAtMs) {
          signed = sign(entry.identity, audience, clientAddress, now);
          assertions.delete(assertionKey);
          if (assertions.size >= maxEntries) assertions.delete(assertions.keys().next().value as string);
          assertions.set(assertionKey, signed);
        }
        // One user behind many addresses keeps a bounded set.
        if (entry.signed.size >= 32) entry.signed.clear();
        entry.signed.set(key, signed);
      }
      return signed.headers;
    },
    evictSessions(sessionIds) {
      generation++;
      assertions.clear();
      const until = Date.now() + endedMemoryMs;
      for (const id of sessionIds) {
        remember(endedSessions, id, until);
        const tokens = bySession.get(id);
        if (tokens) for (const token of [...tokens]) remove(token);
      }
    },
    evictUsers(userIds) {
      generation++;
      assertions.clear();
      for (const id of userIds) {
        const tokens = byUser.get(id);
        if (tokens) for (const token of [...tokens]) remove(token);
      }
    },
    evictKeys(keyIds) {
      generation++;
      assertions.clear();
      const until = Date.now() + endedMemoryMs;
      for (const kid of keyIds) remember(withdrawnKeys, kid, until);
      const withdrawn = new Set(keyIds);
      for (const token of [...entries.keys()]) if (withdrawn.has(tokenKeyId(token))) remove(token);
    },
    clear() {
      generation++;
      assertions.clear();
      entries.clear();
      bySession.clear();
      byUser.clear();
      refused.clear();
    },
    setDegraded(value) {
      degraded = value;
      ttlMs = value ? Math.min(options.degradedTtlMs, options.ttlMs) : options.ttlMs;
    },
    get degraded() {
      return degraded;
    },
    stats: () => ({ hits, misses, size: entries.size }),
    close() {
      clearInterval(sweep);
      cache.clear();
    },
  };
  cache.setDegraded(true);
  return cache;
}
