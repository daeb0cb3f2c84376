import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  type AuthService,
  type Tokens,
  TokensSchema,
  type User,
  UserSchema,
  type WatchRevocationsResponse,
  WatchRevocationsResponseSchema,
} from "@portico/gen/portico/auth/v1/auth_pb.js";
import { identityKey, type Logger, requireIdentity } from "@portico/kit";
import {
  type AuthenticateOutcome,
  authenticateBatchResponse,
  authenticateResponse,
  maxAuthenticateBatch,
} from "@portico/kit/authenticate-codec";
import type { AccessClaims, AccessTokens } from "./access-tokens.js";
import type { AuthStore, IssuedSession, UserRow } from "./auth-store.js";
import { isUniqueViolation } from "./auth-store.js";
import { clientAddress } from "./client-address.js";
import { normaliseEmail } from "./email-address.js";
import { type FieldViolation, invalidArgument } from "./error-details.js";
import type { LoginLimiter } from "./login-limiter.js";
import type { PasswordHasher } from "./password-hasher.js";
import { MAX_PASSWORD_BYTES, passwordProblem } from "./password-policy.js";
import { cameOverHttps, clearedRefreshCookie, isBrowserRequest, readRefreshCookie, refreshCookie } from "./refresh-cookie.js";
import type { Revocation, RevocationSet } from "./revocation-set.js";
import type { SigningKeys } from "./signing-keys.js";

export interface AuthServiceDeps {
  store: AuthStore;
  hasher: PasswordHasher;
  tokens: AccessTokens;
  keys: SigningKeys;
  revocations: RevocationSet;
  limiter: LoginLimiter;
  logger: Logger;
  /** Ends WatchRevocations streams when the service shuts down. */
  shutdown: AbortSignal;
}

/** The permission SetUserRoles needs. */
export const ADMIN_PERMISSION = "auth.admin";
const MAX_DISPLAY_NAME = 100;
const MAX_ROLES = 32;
const ROLE = /^[a-z][a-z0-9_.:-]{0,63}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const BAD_CREDENTIALS = "email or password is incorrect";

function toUser(row: UserRow): User {
  return create(UserSchema, {
    id: row.id,
    email: row.email,
    displayName: row.display_name,
    tier: row.tier,
    roles: row.roles,
    createdAt: timestampFromMs(row.created_at.getTime()),
  });
}

function checkEmail(value: string, violations: FieldViolation[]): string {
  const check = normaliseEmail(value);
  if (!check.ok) violations.push({ field: "email", description: check.reason });
  return check.ok ? check.email : "";
}

// Length is checked before anything else touches the password, hashing included.
function checkPasswordSize(field: string, value: string, violations: FieldViolation[]): boolean {
  if (value === "") {
    violations.push({ field, description: "must not be empty" });
    return false;
  }
  if (value.length > MAX_PASSWORD_BYTES || Buffer.byteLength(value, "utf8") > MAX_PASSWORD_BYTES) {
    violations.push({ field, description: `must be at most ${MAX_PASSWORD_BYTES} bytes` });
    return false;
  }
  return true;
}

function checkDisplayName(value: string, email: string, violations: FieldViolation[]): string {
  const name = value.normalize("NFC").trim();
  if ([...name].length > MAX_DISPLAY_NAME)
    violations.push({ field: "display_name", description: `must be at most ${MAX_DISPLAY_NAME} characters` });
  else if (/[\p{Cc}\p{Co}\p{Cs}\u202a-\u202e\u2066-\u2069]/u.test(name)) {
    violations.push({ field: "display_name", description: "must not contain control characters" });
  }
  return name || email.slice(0, email.lastIndexOf("@"));
}

function revocationMessage(revocation: Revocation): WatchRevocationsResponse {
  if ("sessionIds" in revocation) return create(WatchRevocationsResponseSchema, { sessionIds: revocation.sessionIds });
  if ("keyIds" in revocation) return create(WatchRevocationsResponseSchema, { keyIds: revocation.keyIds });
  return create(WatchRevocationsResponseSchema, {
    userIds: [revocation.userId],
    revokedBefore: timestampFromMs(revocation.revokedBeforeMs),
  });
}

/** Authenticate's logic: verify the token locally, check the in-memory revocation set, answer the claims. */
export function createAuthenticator(tokens: AccessTokens, revocations: RevocationSet) {
  return async (accessToken: string): Promise<AccessClaims> => {
    const claims = await tokens.verify(accessToken);
    if (revocations.isRevoked(claims.sessionId, claims.userId, claims.issuedAtMs)) {
      throw new ConnectError("access token has been revoked", Code.Unauthenticated);
    }
    return claims;
  };
}

/**
 * AuthenticateBatch's logic: each token as Authenticate checks it, a refused token answered in its
 * own result. A batch over the limits is refused whole, with nothing checked.
 */
export function createBatchAuthenticator(
  authenticate: (accessToken: string) => Promise<AccessClaims>,
  logger: Pick<Logger, "error">,
) {
  return (accessTokens: readonly string[]): Promise<AuthenticateOutcome[]> => {
    if (accessTokens.length > maxAuthenticateBatch.tokens) {
      throw new ConnectError(
        `at most ${maxAuthenticateBatch.tokens} access tokens per batch, got ${accessTokens.length}`,
        Code.InvalidArgument,
      );
    }
    let bytes = 0;
    for (const token of accessTokens) bytes += Buffer.byteLength(token, "utf8");
    if (bytes > maxAuthenticateBatch.bytes) {
      throw new ConnectError(`at most ${maxAuthenticateBatch.bytes} bytes of access tokens per batch`, Code.InvalidArgument);
    }
    return Promise.all(
      accessTokens.map((token) =>
        authenticate(token).catch((error: unknown): AuthenticateOutcome => {
          if (error instanceof ConnectError) return { code: error.code, message: error.rawMessage };
          // A fault of this process on one token fails that token alone, as Authenticate would.
          logger.error({ err: error, method: "AuthenticateBatch" }, "handler failed");
          return { code: Code.Internal, message: "internal error" };
        }),
      ),
    );
  };
}

export function createAuthService(deps: AuthServiceDeps): ServiceImpl<typeof AuthService> {
  const { store, hasher, tokens, keys, revocations, limiter } = deps;
  const authenticate = createAuthenticator(tokens, revocations);
  const authenticateBatch = createBatchAuthenticator(authenticate, deps.logger);

  // After a committed revocation: apply it here at once and tell the watchers. The change is already
  // durable, so a failed read only delays it to the next poll and does not fail the call.
  const announce = () =>
    revocations
      .sync()
      .catch((error: unknown) => deps.logger.warn({ err: error }, "revocation committed; announcing it on the next poll"));

  // A new access token for the session, plus the refresh token in the cookie and, for callers
  // that are not browsers, in the body.
  async function issueTokens(user: UserRow, session: IssuedSession, ctx: HandlerContext): Promise<Tokens> {
    const access = await tokens.issue({ userId: user.id, sessionId: session.sessionId, tier: user.tier, roles: user.roles });
    const maxAge = (session.refreshExpiresAtMs - Date.now()) / 1000;
    ctx.responseHeader.append("set-cookie", refreshCookie(session.refreshToken, maxAge, cameOverHttps(ctx.requestHeader)));
    return create(TokensSchema, {
      accessToken: access.token,
      refreshToken: isBrowserRequest(ctx.requestHeader) ? "" : session.refreshToken,
      accessTokenExpiresAt: timestampFromMs(access.expiresAtMs),
      refreshTokenExpiresAt: timestampFromMs(session.refreshExpiresAtMs),
    });
  }

  function refreshTokenOf(bodyToken: string, ctx: HandlerContext): string | undefined {
    return bodyToken !== "" ? bodyToken : readRefreshCookie(ctx.requestHeader.get("cookie"));
  }

  async function currentUser(ctx: HandlerContext): Promise<UserRow> {
    const identity = requireIdentity(ctx);
    const user = await store.getUser(identity.userId);
    if (!user) throw new ConnectError("the account no longer exists", Code.Unauthenticated);
    return user;
  }

  return {
    async signUp(req, ctx) {
      const violations: FieldViolation[] = [];
      const email = checkEmail(req.email, violations);
      if (checkPasswordSize("password", req.password, violations)) {
        const problem = passwordProblem(req.password, email || undefined);
        if (problem) violations.push({ field: "password", description: problem });
      }
      const displayName = checkDisplayName(req.displayName, email, violations);
      if (violations.length > 0) throw invalidArgument(violations);
      limiter.checkSignUp(clientAddress(ctx));
      const passwordHash = await hasher.hash(req.password);
      let created: Awaited<ReturnType<AuthStore["createAccount"]>>;
      try {
        created = await store.createAccount({ email, displayName, passwordHash });
      } catch (error) {
        if (isUniqueViolation(error)) throw new ConnectError("an account with this email already exists", Code.AlreadyExists);
        throw error;
      }
      return { user: toUser(created.user), tokens: await issueTokens(created.user, created.session, ctx) };
    },

    async login(req, ctx) {
      const violations: FieldViolation[] = [];
      const email = checkEmail(req.email, violations);
      checkPasswordSize("password", req.password, violations);
      if (violations.length > 0) throw invalidArgument(violations);
      const ip = clientAddress(ctx);
      limiter.checkLogin(email, ip);
      // Unknown email and wrong password cost the same hash and get the same answer.
      const user = await store.findUserByEmail(email);
      const ok = await hasher.verify(user?.password_hash, req.password);
      if (!user || !ok) {
        limiter.recordFailure(email, ip);
        throw new ConnectError(BAD_CREDENTIALS, Code.Unauthenticated);
      }
      limiter.recordSuccess(email);
      const session = await store.startSession(user.id);
      return { user: toUser(user), tokens: await issueTokens(user, session, ctx) };
    },

    async refresh(req, ctx) {
      const token = refreshTokenOf(req.refreshToken, ctx);
      if (!token) throw new ConnectError("no refresh token: send it in the body or the session cookie", Code.Unauthenticated);
      const outcome = await store.refresh(token);
      if (outcome.kind !== "rotated") {
        ctx.responseHeader.append("set-cookie", clearedRefreshCookie(cameOverHttps(ctx.requestHeader)));
      }
      switch (outcome.kind) {
        case "rotated":
          return { user: toUser(outcome.user), tokens: await issueTokens(outcome.user, outcome.session, ctx) };
        case "reused":
          deps.logger.warn({ sessionId: outcome.sessionId }, "refresh token reused: session revoked");
          await announce();
          throw new ConnectError("refresh token was already used: the session has been ended", Code.Unauthenticated);
        case "ended":
          throw new ConnectError("the session has ended", Code.Unauthenticated);
        case "expired":
          throw new ConnectError("refresh token has expired", Code.Unauthenticated);
        default:
          throw new ConnectError("refresh token is not valid", Code.Unauthenticated);
      }
    },

    async logout(req, ctx) {
      const token = refreshTokenOf(req.refreshToken, ctx);
      const sessionId = token ? await store.sessionOfRefreshToken(token) : ctx.values.get(identityKey)?.sessionId;
      ctx.responseHeader.append("set-cookie", clearedRefreshCookie(cameOverHttps(ctx.requestHeader)));
      if (!sessionId || !UUID.test(sessionId)) {
        throw new ConnectError("no session to end: send the refresh token or an access token", Code.Unauthenticated);
      }
      if (await store.revokeSession(sessionId, "logout")) await announce();
      return {};
    },

    async logoutAll(_req, ctx) {
      const user = await currentUser(ctx);
      const sessionsRevoked = await store.revokeAllSessions(user.id, "logout everywhere");
      await announce();
      ctx.responseHeader.append("set-cookie", clearedRefreshCookie(cameOverHttps(ctx.requestHeader)));
      return { sessionsRevoked };
    },

    async getMe(_req, ctx) {
      return { user: toUser(await currentUser(ctx)) };
    },

    async changePassword(req, ctx) {
      const identity = requireIdentity(ctx);
      const violations: FieldViolation[] = [];
      const currentOk = checkPasswordSize("current_password", req.currentPassword, violations);
      const newOk = checkPasswordSize("new_password", req.newPassword, violations);
      if (violations.length > 0 || !currentOk || !newOk) throw invalidArgument(violations);
      const user = await currentUser(ctx);
      const problem = passwordProblem(req.newPassword, user.email);
      if (problem) throw invalidArgument([{ field: "new_password", description: problem }]);
      const ip = clientAddress(ctx);
      limiter.checkLogin(user.email, ip);
      if (!(await hasher.verify(user.password_hash, req.currentPassword))) {
        limiter.recordFailure(user.email, ip);
        throw invalidArgument([{ field: "current_password", description: "is not your current password" }]);
      }
      const passwordHash = await hasher.hash(req.newPassword);
      const sessionsRevoked = await store.changePassword(user.id, passwordHash, identity.sessionId);
      await announce();
      return { sessionsRevoked };
    },

    async setUserRoles(req, ctx) {
      const identity = requireIdentity(ctx);
      if (!identity.roles.includes(ADMIN_PERMISSION)) {
        throw new ConnectError(`SetUserRoles needs the permission "${ADMIN_PERMISSION}"`, Code.PermissionDenied);
      }
      const violations: FieldViolation[] = [];
      if (!UUID.test(req.userId)) violations.push({ field: "user_id", description: "must be a user id (UUID)" });
      if (req.roles.length > MAX_ROLES)
        violations.push({ field: "roles", description: `must have at most ${MAX_ROLES} entries` });
      req.roles.forEach((role, i) => {
        if (!ROLE.test(role)) {
          violations.push({ field: `roles[${i}]`, description: "must be lower-case letters, digits and . _ : - (at most 64)" });
        }
      });
      if (violations.length > 0) throw invalidArgument(violations);
      const user = await store.setRoles(req.userId.toLowerCase(), [...new Set(req.roles)].sort());
      if (!user) throw new ConnectError(`no user with id ${req.userId}`, Code.NotFound);
      await announce();
      deps.logger.info({ userId: user.id, roles: user.roles, by: identity.userId }, "roles changed");
      return { user: toUser(user) };
    },

    authenticate: async (req) => authenticateResponse(await authenticate(req.accessToken)),

    authenticateBatch: async (req) => authenticateBatchResponse(await authenticateBatch(req.accessTokens)),

    async *watchRevocations(_req, ctx) {
      const signal = AbortSignal.any([ctx.signal, deps.shutdown]);
      const queue: WatchRevocationsResponse[] = [];
      let wake: (() => void) | undefined;
      const onAbort = () => wake?.();
      signal.addEventListener("abort", onAbort);
      const unsubscribe = revocations.subscribe((revocation) => {
        queue.push(revocationMessage(revocation));
        wake?.();
      });
      try {
        const snapshot = revocations.snapshot();
        yield create(WatchRevocationsResponseSchema, {
          snapshot: true,
          sessionIds: snapshot.sessionIds,
          keyIds: snapshot.keyIds,
        });
        for (const user of snapshot.users) yield revocationMessage(user);
        while (!signal.aborted) {
          const next = queue.shift();
          if (next) {
            yield next;
            continue;
          }
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = undefined;
        }
        if (deps.shutdown.aborted) throw new ConnectError("the auth service is shutting down", Code.Unavailable);
      } finally {
        unsubscribe();
        signal.removeEventListener("abort", onAbort);
      }
    },

    async getJwks() {
      return { jwksJson: JSON.stringify(keys.jwks()) };
    },
  };
}
