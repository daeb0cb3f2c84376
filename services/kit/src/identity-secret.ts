import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { ConfigError } from "./config-error.js";
import type { Env } from "./env-reader.js";

/**
 * The secret that signs and verifies `x-portico-identity`: `PORTICO_IDENTITY_SECRET` when set
 * (at least 32 characters), otherwise a random one kept in `<dataDir>/identity-secret`, so the
 * services of one machine share it without configuration.
 */
export function loadIdentitySecret(env: Env, dataDir: string): string {
  const given = env.PORTICO_IDENTITY_SECRET?.trim();
  if (given) {
    if (given.length < 32) {
      throw new ConfigError(`PORTICO_IDENTITY_SECRET has ${given.length} characters: at least 32 are required`);
    }
    return given;
  }
  const file = join(dataDir, "identity-secret");
  try {
    return readFileSync(file, "utf8").trim();
  } catch {
    mkdirSync(dirname(file), { recursive: true });
    const secret = randomBytes(32).toString("base64url");
    try {
      writeFileSync(file, secret, { mode: 0o600, flag: "wx" });
      return secret;
    } catch {
      // Another service wrote it first.
      return readFileSync(file, "utf8").trim();
    }
  }
}
