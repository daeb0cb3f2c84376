import { randomBytes } from "node:crypto";
import type { Algorithm } from "@node-rs/argon2";

/** argon2id cost; the defaults are OWASP's minimum (19 MiB, 2 passes, 1 lane). */
export interface PasswordHasherOptions {
  memoryCostKiB?: number;
  timeCost?: number;
}

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** Whether `password` matches `stored`; with no stored hash, spends the same time and answers false. */
  verify(stored: string | undefined, password: string): Promise<boolean>;
}

const ARGON2ID = 2 as Algorithm;

export async function createPasswordHasher(options: PasswordHasherOptions = {}): Promise<PasswordHasher> {
  const memoryCost = options.memoryCostKiB ?? 19_456;
  const timeCost = options.timeCost ?? 2;
  if (!Number.isInteger(memoryCost) || memoryCost < 19_456) {
    throw new Error(`password hashing: memoryCostKiB ${memoryCost} is too small; at least 19456 (19 MiB) is required`);
  }
  if (!Number.isInteger(timeCost) || timeCost < 2) {
    throw new Error(`password hashing: timeCost ${timeCost} is too small; at least 2 is required`);
  }
  const params = { algorithm: ARGON2ID, memoryCost, timeCost, parallelism: 1 };
  // The argon2 addon (about 5 MB resident) loads with the first sign-up or sign-in, not at start-up: an
  // idle platform holds none of it. The first call of either kind pays the load and the dummy hash.
  let loaded: Promise<{ argon2: typeof import("@node-rs/argon2"); dummy: string }> | undefined;
  const load = () => {
    loaded ??= (async () => {
      const argon2 = await import("@node-rs/argon2");
      // Unknown emails are checked against this, so they cost what a wrong password costs.
      return { argon2, dummy: await argon2.hash(randomBytes(16).toString("base64url"), params) };
    })();
    loaded.catch(() => {
      loaded = undefined;
    });
    return loaded;
  };
  return {
    hash: async (password) => (await load()).argon2.hash(password, params),
    async verify(stored, password) {
      const { argon2, dummy } = await load();
      if (stored === undefined) {
        await argon2.verify(dummy, password).catch(() => false);
        return false;
      }
      return argon2.verify(stored, password).catch(() => false);
    },
  };
}
