import { createHash, randomBytes, randomUUID } from "node:crypto";
import type { Database, Queryable } from "@portico/kit";
import { recordRevocation } from "./revocation-set.js";

export interface UserRow {
  id: string;
  email: string;
  display_name: string;
  password_hash: string;
  tier: string;
  roles: string[];
  created_at: Date;
}

/** A session's newly issued refresh token (the only time it exists in clear). */
export interface IssuedSession {
  sessionId: string;
  refreshToken: string;
  refreshExpiresAtMs: number;
}

export type RefreshOutcome =
  | { kind: "rotated"; user: UserRow; session: IssuedSession }
  | { kind: "unknown" }
  | { kind: "ended" }
  | { kind: "expired" }
  /** The token had been rotated already: the session is now revoked. */
  | { kind: "reused"; sessionId: string };

export interface AuthStoreOptions {
  db: Database;
  refreshTtlMs: number;
}

const USER_COLUMNS = "id::text as id, email, display_name, password_hash, tier, roles, created_at";
const MAX_REFRESH_TOKEN_LENGTH = 256;

/** SHA-256 of a refresh token: the only form in which it is stored. */
export function hashRefreshToken(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

/** Whether `error` is PostgreSQL's unique_violation. */
export function isUniqueViolation(error: unknown): boolean {
  return (error as { code?: unknown })?.code === "23505";
}

/** Every SQL statement of the auth service; writes that belong together run in one transaction. */
export function createAuthStore(options: AuthStoreOptions) {
  const { db, refreshTtlMs } = options;

  async function insertSession(tx: Queryable, userId: string): Promise<IssuedSession> {
    const sessionId = randomUUID();
    const refreshToken = randomBytes(32).toString("base64url");
    const refreshExpiresAtMs = Date.now() + refreshTtlMs;
    const expiresAt = new Date(refreshExpiresAtMs).toISOString();
    await tx.query("insert into sessions (id, user_id, expires_at) values ($1, $2, $3::timestamptz)", [
      sessionId,
      userId,
      expiresAt,
    ]);
    await tx.query("insert into refresh_tokens (token_hash, session_id, expires_at) values ($1, $2, $3::timestamptz)", [
      hashRefreshToken(refreshToken),
      sessionId,
      expiresAt,
    ]);
    return { sessionId, refreshToken, refreshExpiresAtMs };
  }

  async function revokeSessions(tx: Queryable, where: string, params: unknown[], reason: string): Promise<string[]> {
    const { rows } = await tx.query<{ id: string }>(
      `update sessions set revoked_at = clock_timestamp(), revoked_reason = $${params.length + 1} where revoked_at is null and ${where} returning id::text as id`,
      [...params, reason],
    );
    const sessionIds = rows.map((row) => row.id);
    await recordRevocation(tx, { sessionIds, reason });
    return sessionIds;
  }

  return {
    /** Creates the user and their first session; throws a unique violation when the email is taken. */
    createAccount(user: { email: string; displayName: string; passwordHash: string }) {
      return db.transaction(async (tx) => {
        const { rows } = await tx.query<UserRow>(
          `insert into users (id, email, display_name, password_hash) values ($1, $2, $3, $4) returning ${USER_COLUMNS}`,
          [randomUUID(), user.email, user.displayName, user.passwordHash],
        );
        const row = rows[0]!;
        return { user: row, session: await insertSession(tx, row.id) };
      });
    },

    async findUserByEmail(email: string): Promise<UserRow | undefined> {
      const { rows } = await db.query<UserRow>(`select ${USER_COLUMNS} from users where email = $1`, [email]);
      return rows[0];
    },

    async getUser(id: string): Promise<UserRow | undefined> {
      const { rows } = await db.query<UserRow>(`select ${USER_COLUMNS} from users where id = $1`, [id]);
      return rows[0];
    },

    startSession(userId: string): Promise<IssuedSession> {
      return db.transaction((tx) => insertSession(tx, userId));
    },

    /** Spends `token` and issues its successor; a spent token presented again revokes the session. */
    refresh(token: string): Promise<RefreshOutcome> {
      if (token.length > MAX_REFRESH_TOKEN_LENGTH) return Promise.resolve({ kind: "unknown" });
      return db.transaction(async (tx): Promise<RefreshOutcome> => {
        const { rows } = await tx.query<{
          session_id: string;
          user_id: string;
          rotated: boolean;
          expired: boolean;
          ended: boolean;
        }>(
          `select s.id::text as session_id, s.user_id::text as user_id, rt.rotated_at is not null as rotated,
                  rt.expires_at <= clock_timestamp() as expired, s.revoked_at is not null as ended
             from refresh_tokens rt join sessions s on s.id = rt.session_id
            where rt.token_hash = $1
              for update of rt, s`,
          [hashRefreshToken(token)],
        );
        const found = rows[0];
        if (!found) return { kind: "unknown" };
        if (found.ended) return { kind: "ended" };
        if (found.rotated) {
          await revokeSessions(tx, "id = $1", [found.session_id], "refresh token reused");
          return { kind: "reused", sessionId: found.session_id };
        }
        if (found.expired) return { kind: "expired" };
        const user = (await tx.query<UserRow>(`select ${USER_COLUMNS} from users where id = $1`, [found.user_id])).rows[0];
        if (!user) return { kind: "ended" };
        await tx.query("update refresh_tokens set rotated_at = clock_timestamp() where token_hash = $1", [
          hashRefreshToken(token),
        ]);
        const refreshToken = randomBytes(32).toString("base64url");
        const refreshExpiresAtMs = Date.now() + refreshTtlMs;
        const expiresAt = new Date(refreshExpiresAtMs).toISOString();
        await tx.query("insert into refresh_tokens (token_hash, session_id, expires_at) values ($1, $2, $3::timestamptz)", [
          hashRefreshToken(refreshToken),
          found.session_id,
          expiresAt,
        ]);
        await tx.query("update sessions set expires_at = $2::timestamptz where id = $1", [found.session_id, expiresAt]);
        return { kind: "rotated", user, session: { sessionId: found.session_id, refreshToken, refreshExpiresAtMs } };
      });
    },

    /** The session a refresh token (current or spent) belongs to. */
    async sessionOfRefreshToken(token: string): Promise<string | undefined> {
      if (token.length > MAX_REFRESH_TOKEN_LENGTH) return undefined;
      const { rows } = await db.query<{ session_id: string }>(
        "select session_id::text as session_id from refresh_tokens where token_hash = $1",
        [hashRefreshToken(token)],
      );
      return rows[0]?.session_id;
    },

    /** Ends one session; false when it had ended already. */
    async revokeSession(sessionId: string, reason: string): Promise<boolean> {
      const ids = await db.transaction((tx) => revokeSessions(tx, "id = $1", [sessionId], reason));
      return ids.length > 0;
    },

    /** Ends every session of a user and voids all their access tokens; returns how many sessions ended. */
    revokeAllSessions(userId: string, reason: string): Promise<number> {
      return db.transaction(async (tx) => {
        const ids = await revokeSessions(tx, "user_id = $1", [userId], reason);
        await recordRevocation(tx, { userId, reason });
        return ids.length;
      });
    },

    /** Stores a new password hash and ends every other session of the user, in one transaction. */
    changePassword(userId: string, passwordHash: string, keepSessionId: string): Promise<number> {
      return db.transaction(async (tx) => {
        await tx.query("update users set password_hash = $2, password_changed_at = clock_timestamp() where id = $1", [
          userId,
          passwordHash,
        ]);
        const keep = /^[0-9a-f-]{36}$/i.test(keepSessionId) ? keepSessionId : "00000000-0000-0000-0000-000000000000";
        const ids = await revokeSessions(tx, "user_id = $1 and id <> $2", [userId, keep], "password changed");
        return ids.length;
      });
    },

    /**
     * Deletes what can no longer matter: expired refresh tokens and sessions, and revocation log rows
     * older than `revocationsOlderThanMs` (no token they could refuse is still alive).
     */
    async pruneExpired(revocationsOlderThanMs: number): Promise<void> {
      await db.query("delete from refresh_tokens where expires_at < clock_timestamp() - interval '1 day'");
      await db.query("delete from sessions where expires_at < clock_timestamp() - interval '1 day'");
      await db.query("delete from revocations where created_at < $1::timestamptz", [
        new Date(Date.now() - revocationsOlderThanMs).toISOString(),
      ]);
    },

    /** Replaces a user's roles (the users trigger announces the change); undefined for an unknown user. */
    async setRoles(userId: string, roles: string[]): Promise<UserRow | undefined> {
      const { rows } = await db.query<UserRow>(`update users set roles = $2::text[] where id = $1 returning ${USER_COLUMNS}`, [
        userId,
        roles,
      ]);
      return rows[0];
    },
  };
}

export type AuthStore = ReturnType<typeof createAuthStore>;
