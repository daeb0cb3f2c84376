import type { Database, Logger, Queryable } from "@portico/kit";

/**
 * One announcement: sessions that ended, a user whose tokens issued before `revokedBeforeMs` are
 * void, or signing keys withdrawn (deleted from `signing_keys`), whose tokens are all void.
 */
export type Revocation = { sessionIds: string[] } | { userId: string; revokedBeforeMs: number } | { keyIds: string[] };

export interface RevocationSetOptions {
  db: Database;
  logger: Logger;
  /** How long a revocation matters: the access-token lifetime plus clock skew; older ones are forgotten. */
  retainMs: number;
  /**
   * How often the revocation log is read for changes made elsewhere while the NOTIFY connection is
   * down (default 1,000 ms).
   */
  pollIntervalMs?: number;
  /**
   * The same while it is up, in case a notification was lost with a connection (default 5,000 ms:
   * under `pg`'s 10 s idle timeout, so the pool's connection is not closed and opened again each time).
   */
  listeningPollIntervalMs?: number;
}

/** The channel the revocation log's trigger notifies on each insert (migrations/003_revocation_notify.sql). */
const channel = "portico_revocations";

export interface RevocationSet {
  /** Whether a token of `userId` for `sessionId`, issued at `issuedAtMs`, has been revoked. No I/O. */
  isRevoked(sessionId: string, userId: string, issuedAtMs: number): boolean;
  /** Reads revocations committed since the last read, applies and announces them. */
  sync(): Promise<void>;
  /** Everything still in force, as announcements. */
  snapshot(): { sessionIds: string[]; users: { userId: string; revokedBeforeMs: number }[]; keyIds: string[] };
  /** Calls `listener` with each new revocation; returns the unsubscribe function. */
  subscribe(listener: (revocation: Revocation) => void): () => void;
  close(): void;
}

/** Appends revocations to the log inside the caller's transaction. */
export async function recordRevocation(
  tx: Queryable,
  revocation: { sessionIds: string[]; reason: string } | { userId: string; reason: string },
): Promise<void> {
  if ("sessionIds" in revocation) {
    if (revocation.sessionIds.length === 0) return;
    await tx.query("insert into revocations (session_id, reason) select unnest($1::uuid[]), $2", [
      revocation.sessionIds,
      revocation.reason,
    ]);
  } else {
    await tx.query("insert into revocations (user_id, revoked_before, reason) values ($1, clock_timestamp(), $2)", [
      revocation.userId,
      revocation.reason,
    ]);
  }
}

interface RevocationRow {
  id: string;
  session_id: string | null;
  user_id: string | null;
  kid: string | null;
  revoked_before: Date | null;
  created_at: Date;
}

// Rows are read again for this long after their creation time: a transaction that committed late
// with an earlier timestamp is still seen. Rows are deduplicated by id.
const OVERLAP_MS = 30_000;

/**
 * The revoked sessions and users, in memory so Authenticate needs no database query, and the
 * withdrawn signing keys, kept current by reading the `revocations` log: at once after this
 * replica's own writes, at once when the log's trigger notifies (writes made by other replicas,
 * scripts or triggers: LISTEN on a connection of its own), and on a slow poll besides; while that
 * connection is down, every poll interval (a second), so a revocation still reaches every replica
 * within one. An idle replica no longer reads the log every second (bench/README.md, session 30).
 */
export async function createRevocationSet(options: RevocationSetOptions): Promise<RevocationSet> {
  const { db, logger, retainMs } = options;
  const sessions = new Map<string, number>(); // session id → revoked at (ms)
  const users = new Map<string, { revokedBeforeMs: number; atMs: number }>();
  const keys = new Map<string, number>(); // withdrawn signing key id → withdrawn at (ms)
  const seen = new Map<string, number>(); // row id → created at (ms)
  const listeners = new Set<(revocation: Revocation) => void>();
  let cursorMs = Date.now() - retainMs;
  let running: Promise<void> | undefined;
  let again = false;
  let failing = false;

  async function read() {
    const since = new Date(Math.min(cursorMs, Date.now()) - OVERLAP_MS).toISOString();
    const { rows } = await db.query<RevocationRow>(
      "select id::text as id, session_id::text as session_id, user_id::text as user_id, kid, revoked_before, created_at from revocations where created_at > $1::timestamptz order by id",
      [since],
    );
    const now = Date.now();
    const sessionIds: string[] = [];
    const keyIds: string[] = [];
    const userEvents: Revocation[] = [];
    for (const row of rows) {
      const createdMs = row.created_at.getTime();
      cursorMs = Math.max(cursorMs, createdMs);
      if (seen.has(row.id)) continue;
      seen.set(row.id, createdMs);
      if (createdMs < now - retainMs) continue;
      if (row.session_id) {
        if (!sessions.has(row.session_id)) sessionIds.push(row.session_id);
        sessions.set(row.session_id, createdMs);
      } else if (row.kid) {
        if (!keys.has(row.kid)) keyIds.push(row.kid);
        keys.set(row.kid, createdMs);
      } else if (row.user_id) {
        const revokedBeforeMs = (row.revoked_before ?? row.created_at).getTime();
        const known = users.get(row.user_id);
        if (!known || known.revokedBeforeMs < revokedBeforeMs) {
          users.set(row.user_id, { revokedBeforeMs, atMs: createdMs });
          userEvents.push({ userId: row.user_id, revokedBeforeMs });
        }
      }
    }
    prune(now);
    // A withdrawn key first: it voids the most tokens.
    const events: Revocation[] = [
      ...(keyIds.length > 0 ? [{ keyIds }] : []),
      ...(sessionIds.length > 0 ? [{ sessionIds }] : []),
      ...userEvents,
    ];
    for (const event of events) {
      for (const listener of listeners) listener(event);
    }
  }

  function prune(now: number) {
    for (const [id, at] of sessions) if (at < now - retainMs) sessions.delete(id);
    for (const [id, user] of users) if (user.atMs < now - retainMs) users.delete(id);
    for (const [kid, at] of keys) if (at < now - retainMs) keys.delete(kid);
    for (const [id, at] of seen) if (at < cursorMs - 2 * OVERLAP_MS && at < now - retainMs) seen.delete(id);
  }

  // One read at a time; a sync asked for during a read runs once more right after it.
  function sync(): Promise<void> {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await read();
        } while (again);
        if (failing) logger.info("revocation log readable again");
        failing = false;
      } finally {
        running = undefined;
      }
    })();
    return running;
  }

  const syncLogged = () =>
    sync().catch((error: unknown) => {
      if (!failing) logger.error({ err: error }, "cannot read the revocation log; retrying");
      failing = true;
    });
  const pollMs = options.pollIntervalMs ?? 1_000;
  const listeningPollMs = options.listeningPollIntervalMs ?? 5_000;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  /** The NOTIFY connection: not up yet, up (the slow poll) or lost (the short poll, till it is back). */
  let notifications: "starting" | "heard" | "lost" = "starting";
  const schedule = () => {
    clearTimeout(timer);
    if (closed) return;
    timer = setTimeout(
      () => {
        schedule();
        void syncLogged();
      },
      notifications === "heard" ? listeningPollMs : pollMs,
    );
    timer.unref();
  };
  // Listening first, then the first read: nothing committed in between goes unheard.
  const listener = await db.listen(channel, {
    onNotify: () => void syncLogged(),
    onListening: () => {
      const back = notifications === "lost";
      notifications = "heard";
      schedule();
      if (!back) return; // the first read follows below
      logger.info("revocation notifications heard again");
      // Notifications sent while the connection was down are lost: read the log once now.
      void syncLogged();
    },
    onLost: (error) => {
      if (notifications !== "lost")
        logger.warn({ err: error }, `revocation notifications lost; reading the log every ${pollMs} ms meanwhile`);
      notifications = "lost";
      schedule();
    },
  });
  try {
    await sync();
  } catch (error) {
    // Not started: the listener must not go on reconnecting for a set nobody holds.
    await listener.close();
    throw error;
  }
  schedule();

  return {
    isRevoked(sessionId, userId, issuedAtMs) {
      if (sessions.has(sessionId)) return true;
      const user = users.get(userId);
      return user !== undefined && issuedAtMs < user.revokedBeforeMs;
    },
    sync,
    snapshot: () => ({
      sessionIds: [...sessions.keys()],
      users: [...users].map(([userId, user]) => ({ userId, revokedBeforeMs: user.revokedBeforeMs })),
      keyIds: [...keys.keys()],
    }),
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close() {
      closed = true;
      clearTimeout(timer);
      void listener.close();
      listeners.clear();
    },
  };
}
