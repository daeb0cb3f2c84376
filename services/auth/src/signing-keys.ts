import { createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from "node:crypto";
import type { Database } from "@portico/kit";
import type { JWK } from "jose";
import { calculateJwkThumbprint } from "jose/jwk/thumbprint";

/** The one algorithm access tokens are signed and verified with. */
export const ACCESS_TOKEN_ALG = "ES256";

export interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicJwk: JWK;
  createdAt: number;
  retiredAt?: number;
}

export interface SigningKeysOptions {
  db: Database;
  /** Age at which the signing key is replaced by a new one. */
  rotateAfterMs: number;
  /** How long a retired key keeps verifying: the access-token lifetime plus clock skew. */
  verifyRetiredForMs: number;
}

export interface SigningKeys {
  /** The key new tokens are signed with (while a withdrawn one is being replaced, its replacement). */
  current(): Promise<SigningKey>;
  /** A key that may verify a token now, by `kid`. */
  find(kid: string): SigningKey | undefined;
  /** The public half of every key that may verify a token now. */
  jwks(): { keys: JWK[] };
  /** Re-reads the keys from the database (another replica may have rotated). */
  reload(): Promise<void>;
  /** Makes a new signing key now; the previous one keeps verifying. */
  rotate(): Promise<SigningKey>;
  /** Rotates when the current key is older than `rotateAfterMs`; true when it did. */
  rotateIfDue(): Promise<boolean>;
  /**
   * Drops keys withdrawn from the database at once, so no token they signed verifies from now on
   * (a reload that read them before their deletion does not bring them back), and makes a new
   * signing key when the current one was among them. Resolves when that is done.
   */
  withdraw(kids: readonly string[]): Promise<void>;
}

interface KeyRow {
  kid: string;
  private_jwk: JsonWebKey | string;
  public_jwk: JWK | string;
  created_at: Date;
  retired_at: Date | null;
}

const json = <T>(value: T | string): T => (typeof value === "string" ? (JSON.parse(value) as T) : value);

/** Persisted, rotating ES256 keys: the newest signs, retired ones verify until their tokens have expired. */
export async function createSigningKeys(options: SigningKeysOptions): Promise<SigningKeys> {
  const { db, rotateAfterMs, verifyRetiredForMs } = options;
  let keys: SigningKey[] = [];
  const withdrawn = new Set<string>();
  // Whether the newest loaded key may sign: not when none is loaded or the newest is retired (a new one is due).
  const canSign = () => keys[0] !== undefined && keys[0].retiredAt === undefined;

  async function reload() {
    const cutoff = new Date(Date.now() - verifyRetiredForMs).toISOString();
    const { rows } = await db.query<KeyRow>(
      "select kid, private_jwk, public_jwk, created_at, retired_at from signing_keys where retired_at is null or retired_at > $1::timestamptz order by created_at desc",
      [cutoff],
    );
    keys = rows
      .filter((row) => !withdrawn.has(row.kid))
      .map((row) => {
        const privateJwk = json(row.private_jwk);
        return {
          kid: row.kid,
          privateKey: createPrivateKey({ key: privateJwk, format: "jwk" }),
          publicKey: createPublicKey({ key: privateJwk, format: "jwk" }),
          publicJwk: json(row.public_jwk),
          createdAt: row.created_at.getTime(),
          retiredAt: row.retired_at?.getTime(),
        };
      });
  }

  // Creates a key unless another replica made a fresh one meanwhile (`force` skips that check).
  async function create(force: boolean): Promise<void> {
    await db.transaction(async (tx) => {
      await tx.query("select pg_advisory_xact_lock(hashtext('portico.auth.signing_keys'))");
      const newest = await tx.query<{ created_at: Date }>(
        "select created_at from signing_keys where retired_at is null order by created_at desc limit 1",
      );
      const age = newest.rows[0] ? Date.now() - newest.rows[0].created_at.getTime() : Number.POSITIVE_INFINITY;
      if (!force && age < rotateAfterMs) return;
      const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
      const privateJwk = privateKey.export({ format: "jwk" });
      const { kty, crv, x, y } = privateJwk;
      const publicJwk: JWK = { kty, crv, x, y };
      const kid = await calculateJwkThumbprint(publicJwk);
      Object.assign(publicJwk, { kid, alg: ACCESS_TOKEN_ALG, use: "sig" });
      await tx.query("update signing_keys set retired_at = clock_timestamp() where retired_at is null");
      await tx.query("insert into signing_keys (kid, alg, private_jwk, public_jwk) values ($1, $2, $3::jsonb, $4::jsonb)", [
        kid,
        ACCESS_TOKEN_ALG,
        JSON.stringify(privateJwk),
        JSON.stringify(publicJwk),
      ]);
    });
    await reload();
  }

  // A new key being made because the signing key was withdrawn; new tokens wait for it.
  let replacing: Promise<void> | undefined;
  const loaded = () => {
    const key = keys[0];
    if (!key) throw new Error("no signing key loaded");
    return key;
  };
  const current = async () => {
    if (replacing) await replacing;
    return loaded();
  };

  await reload();
  if (!canSign()) await create(false);

  return {
    current,
    find: (kid) => keys.find((key) => key.kid === kid),
    jwks: () => ({ keys: keys.map((key) => key.publicJwk) }),
    reload,
    async rotate() {
      await create(true);
      return current();
    },
    async rotateIfDue() {
      if (canSign() && Date.now() - loaded().createdAt < rotateAfterMs) return false;
      await create(false);
      return true;
    },
    async withdraw(kids) {
      for (const kid of kids) withdrawn.add(kid);
      keys = keys.filter((key) => !withdrawn.has(key.kid));
      if (canSign()) return;
      replacing ??= create(false).finally(() => {
        replacing = undefined;
      });
      await replacing;
    },
  };
}
