import { createPublicKey, type JsonWebKey, type KeyObject } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { ConfigError } from "./config-error.js";
import { checkServiceName } from "./service-directory.js";
import { type Jwk, type KeyAlgorithm, serviceOfKid } from "./service-key.js";

/** A public key the platform trusts, and the service it belongs to. */
export interface TrustedKey {
  readonly kid: string;
  readonly service: string;
  readonly alg: KeyAlgorithm;
  readonly key: KeyObject;
}

export interface TrustBundleOptions {
  /** Fixed keys (a JWKS object). */
  jwks?: { keys: Jwk[] };
  /** A JWKS file (a mounted secret or config map), re-read when it changes. */
  file?: string;
  /** A JWKS endpoint, e.g. the gateway's `http://gateway:9090/.well-known/jwks.json`. */
  url?: string;
  /** How often a file or URL is looked at again (default 30 000 ms); an unknown kid looks at once (at most every second, or every refreshMs if shorter). */
  refreshMs?: number;
}

/** The public keys of every service: what verifies assertions and service tokens. Holds no private key. */
export interface TrustBundle {
  /** The trusted key named `kid`; an unknown kid re-reads the source (rate limited) before answering undefined. */
  key(kid: string): Promise<TrustedKey | undefined>;
  /** The public keys as a JWKS document (the gateway serves it on its admin port). */
  jwks(): { keys: Jwk[] };
  close(): void;
}

function parseBundle(document: unknown, where: string): Map<string, TrustedKey> {
  const keys = (document as { keys?: unknown })?.keys;
  if (!Array.isArray(keys)) throw new ConfigError(`${where}: expected a JWKS document {"keys": [...]}`);
  const out = new Map<string, TrustedKey>();
  for (const jwk of keys as Jwk[]) {
    const service = serviceOfKid(jwk?.kid);
    if (!service) throw new ConfigError(`${where}: key ${JSON.stringify(jwk?.kid)} has no kid of the form "<service>.<id>"`);
    checkServiceName(service, where);
    if ("d" in jwk)
      throw new ConfigError(`${where}: key ${jwk.kid} holds private key material; a trust bundle has public keys only`);
    let alg: KeyAlgorithm;
    if (jwk.kty === "OKP" && jwk.crv === "Ed25519" && (jwk.alg ?? "EdDSA") === "EdDSA") alg = "EdDSA";
    else if (jwk.kty === "EC" && jwk.crv === "P-256" && (jwk.alg ?? "ES256") === "ES256") alg = "ES256";
    else
      throw new ConfigError(
        `${where}: key ${jwk.kid} is ${jwk.kty}/${String(jwk.crv)} ${jwk.alg ?? ""}; expected Ed25519 (EdDSA) or P-256 (ES256)`,
      );
    let key: KeyObject;
    try {
      key = createPublicKey({ key: jwk as JsonWebKey, format: "jwk" });
    } catch (error) {
      throw new ConfigError(`${where}: key ${jwk.kid} cannot be read: ${(error as Error).message}`);
    }
    out.set(jwk.kid as string, { kid: jwk.kid as string, service, alg, key });
  }
  return out;
}

const publicJwk = (k: TrustedKey): Jwk => ({ ...(k.key.export({ format: "jwk" }) as Jwk), kid: k.kid, alg: k.alg, use: "sig" });

/** Exactly one of `jwks`, `file` or `url`; a file is read (and checked) at once. */
export function createTrustBundle(options: TrustBundleOptions): TrustBundle {
  const sources = [options.jwks, options.file, options.url].filter((s) => s !== undefined);
  if (sources.length !== 1) throw new ConfigError("createTrustBundle: give exactly one of jwks, file or url");
  const refreshMs = options.refreshMs ?? 30_000;
  if (!Number.isInteger(refreshMs) || refreshMs < 100) {
    throw new ConfigError(`createTrustBundle: refreshMs ${refreshMs} is not valid; expected a whole number ≥ 100`);
  }
  let keys = new Map<string, TrustedKey>();
  let lastLoad = 0;
  let fileStamp = "";
  let loading: Promise<void> | undefined;

  const readFile = (file: string) => {
    const stat = statSync(file);
    const stamp = `${stat.mtimeMs}:${stat.size}`;
    if (stamp === fileStamp) return;
    let document: unknown;
    try {
      document = JSON.parse(readFileSync(file, "utf8"));
    } catch (error) {
      throw new ConfigError(`trust bundle ${file}: ${(error as Error).message}`);
    }
    keys = parseBundle(document, `trust bundle ${file}`);
    fileStamp = stamp;
  };
  const fetchUrl = async (url: string) => {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    if (!res.ok) throw new Error(`trust bundle ${url}: HTTP ${res.status}`);
    keys = parseBundle(await res.json(), `trust bundle ${url}`);
  };
  // A source that cannot be read keeps the keys of its last good read.
  const reload = (): Promise<void> => {
    lastLoad = Date.now();
    if (options.file !== undefined) {
      try {
        readFile(options.file);
      } catch {}
      return Promise.resolve();
    }
    if (options.url !== undefined) {
      loading ??= fetchUrl(options.url)
        .catch(() => {})
        .finally(() => {
          loading = undefined;
        });
      return loading;
    }
    return Promise.resolve();
  };

  if (options.jwks) keys = parseBundle(options.jwks, "trust bundle");
  if (options.file !== undefined) {
    readFile(options.file);
    lastLoad = Date.now();
  }
  const first = options.url !== undefined ? reload() : Promise.resolve();
  const timer = options.jwks ? undefined : setInterval(() => void reload(), refreshMs);
  timer?.unref();

  return {
    async key(kid) {
      await first;
      const known = keys.get(kid);
      if (known !== undefined || options.jwks) return known;
      if (Date.now() - lastLoad >= Math.min(1000, refreshMs)) await reload();
      return keys.get(kid);
    },
    jwks: () => ({ keys: [...keys.values()].map(publicJwk) }),
    close() {
      if (timer) clearInterval(timer);
    },
  };
}
