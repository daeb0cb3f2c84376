import { fileURLToPath } from "node:url";
import { AuthService } from "@portico/gen/portico/auth/v1/auth_pb.js";
import { type Database, type Logger, migrate, type ServiceIdentity, servicePorts, startServiceServer } from "@portico/kit";
import { createAccessTokens } from "./access-tokens.js";
import { createAuthenticator, createAuthService, createBatchAuthenticator } from "./auth-service.js";
import { createAuthStore } from "./auth-store.js";
import {
  AUTHENTICATE_BATCH_PATH,
  AUTHENTICATE_PATH,
  createAuthenticateBatchFastPath,
  createAuthenticateFastPath,
} from "./authenticate-fast-path.js";
import { createLoginLimiter, type LoginLimits } from "./login-limiter.js";
import { createPasswordHasher, type PasswordHasherOptions } from "./password-hasher.js";
import { createRevocationSet } from "./revocation-set.js";
import { createSigningKeys, type SigningKey } from "./signing-keys.js";

export interface AuthOptions {
  /** h2c port; 0 picks a free one (default: its port in portico.services.json). */
  port?: number;
  /** Default 127.0.0.1: the auth service is internal. */
  host?: string;
  /** The auth service's own database; migrations are applied at start. */
  db: Database;
  logger: Logger;
  /** The auth service's key pair and the trust bundle (service `auth`): who may call what, per the .proto policy. */
  identity: ServiceIdentity;
  /** `iss` of access tokens (default "portico-auth"). */
  issuer?: string;
  /** `aud` of access tokens (default "portico"). */
  audience?: string;
  /** Access-token lifetime (default 900 s). */
  accessTokenTtlSeconds?: number;
  /** Refresh-token lifetime; each Refresh starts it again (default 30 days). */
  refreshTokenTtlSeconds?: number;
  /** Clock skew tolerated on `exp`/`nbf`, 0 to 30 (default 30 s). */
  clockSkewSeconds?: number;
  /** Age at which the signing key is replaced (default 7 days). */
  keyRotationSeconds?: number;
  /** How often other replicas' revocations are read from the database (default 1,000 ms). */
  revocationPollMs?: number;
  passwordHashing?: PasswordHasherOptions;
  loginLimits?: LoginLimits;
  /** How long calls in flight may take to finish on close (default 10 s). */
  shutdownGraceMs?: number;
  /** Verified access tokens remembered to skip repeated signature checks (default 50,000; 0 turns it off). */
  tokenCacheSize?: number;
}

export interface AuthServer {
  readonly url: string;
  readonly port: number;
  /** Makes a new signing key now; tokens signed by the previous one keep verifying until they expire. */
  rotateSigningKey(): Promise<SigningKey>;
  close(): Promise<void>;
}

const MIGRATIONS = fileURLToPath(new URL("../migrations", import.meta.url));

function check(name: string, value: number | undefined, fallback: number, min: number, max: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new Error(`startAuth: ${name} ${value} is not valid; expected a whole number from ${min} to ${max}`);
  }
  return v;
}

/** Starts the auth service: migrations, signing keys, the revocation set and the h2c server. */
export async function startAuth(options: AuthOptions): Promise<AuthServer> {
  const accessTtl = check("accessTokenTtlSeconds", options.accessTokenTtlSeconds, 900, 10, 3600);
  const refreshTtl = check("refreshTokenTtlSeconds", options.refreshTokenTtlSeconds, 30 * 86_400, 60, 365 * 86_400);
  const skew = check("clockSkewSeconds", options.clockSkewSeconds, 30, 0, 30);
  const rotation = check("keyRotationSeconds", options.keyRotationSeconds, 7 * 86_400, 60, 365 * 86_400);
  const pollMs = check("revocationPollMs", options.revocationPollMs, 1_000, 10, 60_000);
  const { db, logger } = options;
  const identity = options.identity;
  if (identity?.service !== "auth") throw new Error(`startAuth: identity must be the auth service's, not ${identity?.service}`);
  const limiter = createLoginLimiter(options.loginLimits);

  const applied = await migrate(db, MIGRATIONS);
  if (applied.length > 0) logger.info({ applied }, "auth migrations applied");
  const hasher = await createPasswordHasher(options.passwordHashing);
  // A token lives at most its ttl plus the skew; revocations and retired keys matter that long.
  const tokenLifeMs = (accessTtl + skew + 5) * 1000;
  const keys = await createSigningKeys({ db, rotateAfterMs: rotation * 1000, verifyRetiredForMs: tokenLifeMs });
  const tokens = createAccessTokens({
    keys,
    issuer: options.issuer ?? "portico-auth",
    audience: options.audience ?? "portico",
    ttlSeconds: accessTtl,
    skewSeconds: skew,
    cacheSize: options.tokenCacheSize,
  });
  const revocations = await createRevocationSet({ db, logger, retainMs: tokenLifeMs, pollIntervalMs: pollMs });
  // A signing key deleted from the database stops verifying here before the gateways hear of it
  // (listeners run in turn, in the same tick), so a gateway's next Authenticate of its tokens fails.
  revocations.subscribe((revocation) => {
    if (!("keyIds" in revocation)) return;
    logger.warn({ kids: revocation.keyIds }, "signing keys withdrawn: their access tokens are refused");
    keys
      .withdraw(revocation.keyIds)
      .catch((error: unknown) =>
        logger.error({ err: error }, "cannot make a new signing key after a withdrawal; retrying each minute"),
      );
  });
  const store = createAuthStore({ db, refreshTtlMs: refreshTtl * 1000 });
  const revocationLogRetainMs = 2 * tokenLifeMs + 60_000;
  await store.pruneExpired(revocationLogRetainMs);
  const shutdown = new AbortController();

  // Rotation, the reload of keys rotated by other replicas and pruning ride on a slow timer.
  let ticks = 0;
  const keyTimer = setInterval(() => {
    keys
      .rotateIfDue()
      .then(async (rotated) =>
        rotated ? logger.info({ kid: (await keys.current()).kid }, "signing key rotated") : keys.reload(),
      )
      .catch((error: unknown) => logger.error({ err: error }, "signing key maintenance failed"));
    if (++ticks % 60 === 0) {
      store.pruneExpired(revocationLogRetainMs).catch((error: unknown) => logger.warn({ err: error }, "pruning failed"));
    }
  }, 60_000);
  keyTimer.unref();

  const authenticate = createAuthenticator(tokens, revocations);
  let server: Awaited<ReturnType<typeof startServiceServer>>;
  try {
    server = await startServiceServer({
      name: "auth",
      port: options.port ?? servicePorts.auth,
      host: options.host,
      logger,
      identity,
      shutdownGraceMs: options.shutdownGraceMs,
      streamHandlers: {
        [AUTHENTICATE_PATH]: createAuthenticateFastPath({ authenticate, guard: identity.guard, logger }),
        [AUTHENTICATE_BATCH_PATH]: createAuthenticateBatchFastPath({
          authenticateBatch: createBatchAuthenticator(authenticate, logger),
          guard: identity.guard,
          logger,
        }),
      },
      httpHandlers: {
        // The same document as GetJwks, for JWT libraries that fetch keys over plain HTTP.
        "/.well-known/jwks.json": (req, res) => {
          if (req.method !== "GET" && req.method !== "HEAD") {
            res.writeHead(405, { allow: "GET, HEAD", "content-type": "application/json" });
            res.end(JSON.stringify({ error: "method not allowed" }));
            return;
          }
          res.writeHead(200, { "content-type": "application/jwk-set+json", "cache-control": "public, max-age=300" });
          res.end(req.method === "HEAD" ? "" : JSON.stringify(keys.jwks()));
        },
      },
      routes(router) {
        router.service(
          AuthService,
          createAuthService({ store, hasher, tokens, keys, revocations, limiter, logger, shutdown: shutdown.signal }),
        );
      },
    });
  } catch (error) {
    clearInterval(keyTimer);
    revocations.close();
    throw error;
  }

  return {
    url: server.url,
    port: server.port,
    rotateSigningKey: () => keys.rotate(),
    async close() {
      clearInterval(keyTimer);
      shutdown.abort();
      await server.close();
      revocations.close();
    },
  };
}
