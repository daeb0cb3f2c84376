import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "./config-error.js";
import { generateServiceKey, importServiceKey, type Jwk, serviceOfKid } from "./service-key.js";

/** Where `npm start` keeps keys: `<data dir>/keys/<service>.key.json` and `<data dir>/keys/trust-bundle.json`. */
export function localKeyPaths(dataRoot: string, service?: string): { dir: string; bundle: string; key: string } {
  const dir = join(dataRoot, "keys");
  return { dir, bundle: join(dir, "trust-bundle.json"), key: join(dir, `${service ?? "_"}.key.json`) };
}

function writeAtomic(file: string, text: string, mode: number): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode });
  renameSync(tmp, file);
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new ConfigError(`${file}: ${(error as Error).message}`);
  }
}

/**
 * Creates, on first run, a key pair for each of `services` (private key files readable by the
 * owner only) and a trust bundle holding every service's public key; keys already there are kept
 * and so are other public keys already in the bundle (a key being rotated in). Returns the bundle path.
 */
export function ensureLocalKeys(dataRoot: string, services: readonly string[]): string {
  const paths = localKeyPaths(dataRoot);
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  chmodSync(paths.dir, 0o700);
  const bundle: Jwk[] = existsSync(paths.bundle) ? ((readJson(paths.bundle) as { keys?: Jwk[] }).keys ?? []) : [];
  const known = new Set(bundle.map((k) => k.kid));
  let changed = !existsSync(paths.bundle);
  for (const service of services) {
    const file = localKeyPaths(dataRoot, service).key;
    const key = existsSync(file) ? importServiceKey(readJson(file) as Jwk, file) : generateServiceKey(service);
    if (!existsSync(file)) writeAtomic(file, `${JSON.stringify(key.privateJwk, null, 2)}\n`, 0o600);
    if (!known.has(key.kid)) {
      // A service's new key replaces its old one in a local bundle: every local service restarts with it.
      for (let i = bundle.length - 1; i >= 0; i--) if (serviceOfKid(bundle[i]?.kid) === service) bundle.splice(i, 1);
      bundle.push(key.publicJwk);
      known.add(key.kid);
      changed = true;
    }
  }
  if (changed) writeAtomic(paths.bundle, `${JSON.stringify({ keys: bundle }, null, 2)}\n`, 0o644);
  return paths.bundle;
}
